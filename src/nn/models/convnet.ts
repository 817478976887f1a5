import type * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, normalize, pool2 } from '../layers.js';
import type { ArchSpec, InputShape, Model, ResolvedArch } from '../types.js';
import { is28, makeModel } from './common.js';

/**
 * ConvNet-D (REFERENCE section 2): D blocks of conv 3x3 (width channels) -> norm -> act -> 2x2 pool,
 * then a linear classifier on the flattened map. A 28x28 input gets padding 3 on the first conv so the
 * net sees 32x32 (features 128 * 4 * 4 = 2048 for the default ConvNet-3).
 */
export function buildConvNet(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { width, depth, norm, act, pool, head } = arch;
  const reg = new ParamRegistry();
  const pads: number[] = [];
  let h = input.height;
  let w = input.width;
  let c = input.channels;
  for (let d = 0; d < depth; d++) {
    const pad = d === 0 && is28(input) ? 3 : 1;
    pads.push(pad);
    h = convOut(h, 3, 1, pad);
    w = convOut(w, 3, 1, pad);
    reg.conv(`block${d}.conv`, 3, c, width);
    reg.norm(`block${d}.norm`, norm, width, h, w);
    c = width;
    const pooled = pool !== 'none' && !(head === 'gap' && d === depth - 1);
    if (pooled) {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
    if (h < 1 || w < 1) throw new Error(`convnet depth ${depth} is too deep for ${input.height}x${input.width} inputs`);
  }
  reg.linear('classifier', head === 'gap' ? width : h * w * width, input.classes);
  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'classifier',
    trunk: (params, x, opts) => {
      let y: tf.Tensor4D = x;
      for (let d = 0; d < depth; d++) {
        y = conv2d(params, `block${d}.conv`, y, 1, pads[d]);
        y = normalize(norm, params, `block${d}.norm`, y, opts);
        y = activate(act, y);
        // With a gap head the global average replaces the last pool: for avg pooling on even sizes the
        // logits are unchanged and the CAM keeps twice the resolution.
        if (!(head === 'gap' && d === depth - 1)) y = pool2(pool, y);
      }
      return y;
    },
  });
}
