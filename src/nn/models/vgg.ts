import type * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, normalize, pool2 } from '../layers.js';
import type { ArchSpec, InputShape, Model, ResolvedArch } from '../types.js';
import { is28, makeModel } from './common.js';

/** VGG configurations in units of the base width (64): 'M' is a 2x2 max pool. */
const CONFIGS = {
  vgg11: [1, 'M', 2, 'M', 4, 4, 'M', 8, 8, 'M', 8, 8, 'M'],
  vgg19: [1, 1, 'M', 2, 2, 'M', 4, 4, 4, 4, 'M', 8, 8, 8, 8, 'M', 8, 8, 8, 8, 'M'],
} satisfies Record<string, (number | 'M')[]>;

/**
 * VGG-11 and VGG-19 as in the reference (instance norm by default, batch norm for VGG11BN/VGG19BN):
 * conv 3x3 -> norm -> act, max pools per the configuration, padding 3 on the first conv for 28x28 inputs,
 * linear classifier on the flattened map (512 features for 28x28 and 32x32). Head 'gap' replaces the last
 * max pool by the global average pool (the CAM is then 2x2 for 32x32 inputs).
 */
export function buildVgg(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { name, width, norm, act, head } = arch;
  if (name !== 'vgg11' && name !== 'vgg19') throw new Error(`buildVgg: '${name}' is not a VGG`);
  const config: (number | 'M')[] = CONFIGS[name];
  const reg = new ParamRegistry();
  const lastPool = config.lastIndexOf('M');
  const plan: ({ conv: number; pad: number; name: string } | 'M' | 'skip')[] = [];
  let h = input.height;
  let w = input.width;
  let c = input.channels;
  let conv = 0;
  config.forEach((item, i) => {
    if (item === 'M') {
      if (i === lastPool && head === 'gap') {
        plan.push('skip');
        return;
      }
      plan.push('M');
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
      return;
    }
    const out = item * width;
    const pad = i === 0 && is28(input) ? 3 : 1;
    const name = `conv${conv++}`;
    h = convOut(h, 3, 1, pad);
    w = convOut(w, 3, 1, pad);
    reg.conv(`${name}.conv`, 3, c, out);
    reg.norm(`${name}.norm`, norm, out, h, w);
    plan.push({ conv: out, pad, name });
    c = out;
  });
  if (h < 1 || w < 1) throw new Error(`${name} needs inputs of at least 32x32 or 28x28 (got ${input.height}x${input.width})`);
  reg.linear('classifier', head === 'gap' ? c : h * w * c, input.classes);
  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'classifier',
    trunk: (params, x, opts) => {
      let y: tf.Tensor4D = x;
      for (const step of plan) {
        if (step === 'skip') continue;
        if (step === 'M') {
          y = pool2('max', y);
          continue;
        }
        y = conv2d(params, `${step.name}.conv`, y, 1, step.pad);
        y = activate(act, normalize(norm, params, `${step.name}.norm`, y, opts));
      }
      return y;
    },
  });
}
