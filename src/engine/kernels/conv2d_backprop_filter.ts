/**
 * Conv2DBackpropFilter for the wasm backend, which has none.
 *
 * dW[kh,kw,ci,co] = sum over b,oh,ow of xpad[b, oh*sh+kh, ow*sw+kw, ci] * dy[b,oh,ow,co].
 *
 * The reduction runs over N = B*OH*OW, which is large, and XNNPACK repacks
 * the right-hand operand of every product (and the filter of every
 * convolution) it has not seen before: packing a fresh [65536 x 128] operand
 * costs more than the multiplication. So the large operand must be the
 * unpacked side. Two formulations, both on XNNPACK through tfjs's kernels,
 * neither with a transposed matmul operand (see matmul.ts):
 * - 'patches' (few input channels): dW^T [Co, T*Ci] = dy^T [Co, N] x P [N, T*Ci],
 *   P the im2col patches (T = KH*KW taps). dy is transposed once (a plain
 *   2-D transpose) and only the small P is packed.
 * - 'conv' (wide layers, where P would be 9x the input): the reduction as a
 *   forward convolution with batch and channels swapped: x^T [Ci, Hp, Wp, B]
 *   convolved with dy^T [OH, OW, B, Co] (dilation = stride) gives
 *   [Ci, KH, KW, Co].
 * `chooseStrategy` encodes what was measured (docs/engine.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor } from '../registry.js';
import {
  convGeometry,
  padOrCrop,
  toNHWC,
  type ConvGeometry,
  type PadAttr,
  type RoundingMode,
} from './conv_util.js';

export type BackpropFilterStrategy = 'patches' | 'conv';

/** Input channels from which 'conv' beats 'patches' (patches grow as KH*KW*Ci per pixel). */
export const CONV_STRATEGY_MIN_CHANNELS = 16;

export function chooseStrategy(g: ConvGeometry): BackpropFilterStrategy {
  return g.inC < CONV_STRATEGY_MIN_CHANNELS ? 'patches' : 'conv';
}

/** x spatially padded/cropped to exactly the rows and columns the filter reads. */
function paddedInput(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const needH = (g.outH - 1) * g.sh + g.kh;
  const needW = (g.outW - 1) * g.sw + g.kw;
  return padOrCrop(x, g.top, needH - g.inH - g.top, g.left, needW - g.inW - g.left);
}

function viaPatches(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const n = g.batch * g.outH * g.outW;
  const taps = g.kh * g.kw;
  const xT = tf.transpose(paddedInput(x, g), [3, 0, 1, 2]); // [Ci, B, Hp, Wp]
  const slices: tf.Tensor[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      const sl =
        g.sh === 1 && g.sw === 1
          ? tf.slice(xT, [0, 0, i, j], [g.inC, g.batch, g.outH, g.outW])
          : tf.stridedSlice(
              xT,
              [0, 0, i, j],
              [g.inC, g.batch, i + (g.outH - 1) * g.sh + 1, j + (g.outW - 1) * g.sw + 1],
              [1, 1, g.sh, g.sw],
            );
      slices.push(tf.reshape(sl, [g.inC, n])); // rows in dy's (b, oh, ow) order
    }
  }
  const patches = tf.transpose(tf.reshape(tf.stack(slices), [taps * g.inC, n])); // [N, T*Ci]
  const dyT = tf.transpose(tf.reshape(dy, [n, g.outC])); // [Co, N]
  const dwT = tf.matMul(dyT, patches); // [Co, T*Ci]
  return tf.reshape(tf.transpose(dwT), [g.kh, g.kw, g.inC, g.outC]);
}

function viaConv(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const xT = tf.transpose(paddedInput(x, g), [3, 1, 2, 0]); // [Ci, Hp, Wp, B]
  const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, Co]
  const dilations: [number, number] = [g.sh, g.sw];
  const out = tf.conv2d(xT, dyT as tf.Tensor4D, 1, 'valid', 'NHWC', dilations); // [Ci, KH, KW, Co]
  return tf.transpose(out, [1, 2, 0, 3]);
}

/** dW for NHWC x and dy, with the given strategy (default: `chooseStrategy`). */
export function conv2dBackpropFilterNHWC(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: PadAttr,
  dimRoundingMode?: RoundingMode,
  strategy?: BackpropFilterStrategy,
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode);
    const which = strategy ?? chooseStrategy(g);
    return which === 'patches' ? viaPatches(x, dy, g) : viaConv(x, dy, g);
  });
}

const conv2dBackpropFilterKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const x = asTensor<tf.Rank.R4>(inputs.x, 'x');
  const dy = asTensor<tf.Rank.R4>(inputs.dy, 'dy');
  // filterShape is [KH, KW, Ci, Co] in both data formats; only x and dy follow it.
  return tf.tidy(() =>
    conv2dBackpropFilterNHWC(
      toNHWC(x, a.dataFormat),
      toNHWC(dy, a.dataFormat),
      a.filterShape,
      a.strides,
      a.pad as PadAttr,
      a.dimRoundingMode,
    ),
  );
};

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterKernel,
};
