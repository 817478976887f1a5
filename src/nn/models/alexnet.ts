import type * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, pool2 } from '../layers.js';
import type { ArchSpec, InputShape, Model, ResolvedArch } from '../types.js';
import { is28, makeModel } from './common.js';

/**
 * AlexNet as the reference adapts it to 32x32: conv5x5 128 (padding 4 on 28x28 inputs, else 2) -> pool,
 * conv5x5 192 -> pool, conv3x3 256, conv3x3 192, conv3x3 192 -> pool, linear on the flattened 192x4x4.
 * No normalisation. Head 'gap' replaces the last max pool by the global average pool.
 */
export function buildAlexNet(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { act, head } = arch;
  const reg = new ParamRegistry();
  // [kernel, out channels, padding, pool after]
  const layers: [number, number, number, boolean][] = [
    [5, 128, is28(input) ? 4 : 2, true],
    [5, 192, 2, true],
    [3, 256, 1, false],
    [3, 192, 1, false],
    [3, 192, 1, true],
  ];
  let h = input.height;
  let w = input.width;
  let c = input.channels;
  layers.forEach(([k, out, pad, pooled], i) => {
    reg.conv(`conv${i}`, k, c, out);
    h = convOut(h, k, 1, pad);
    w = convOut(w, k, 1, pad);
    const last = i === layers.length - 1;
    if (pooled && !(last && head === 'gap')) {
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    }
    c = out;
  });
  if (h < 1 || w < 1) throw new Error(`alexnet needs inputs of at least 8x8 (got ${input.height}x${input.width})`);
  reg.linear('fc', head === 'gap' ? c : h * w * c, input.classes);
  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'fc',
    trunk: (params, x) => {
      let y: tf.Tensor4D = x;
      layers.forEach(([, , pad, pooled], i) => {
        y = activate(act, conv2d(params, `conv${i}`, y, 1, pad));
        const last = i === layers.length - 1;
        if (pooled && !(last && head === 'gap')) y = pool2('max', y);
      });
      return y;
    },
  });
}
