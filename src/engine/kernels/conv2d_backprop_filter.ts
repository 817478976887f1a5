/**
 * Conv2DBackpropFilter for the wasm backend, which has none.
 *
 * dW[kh,kw,ci,co] = sum over b,oh,ow of xpad[b, oh*sh+kh, ow*sw+kw, ci] * dy[b,oh,ow,co].
 *
 * Two formulations, both on XNNPACK through tfjs's own wasm kernels:
 * - 'taps': x transposed once to [Ci, B, H, W]; each filter tap is a slice of
 *   that, reshaped to [Ci, N] (N = B*OH*OW, the same row order as dy), and one
 *   plain matmul with dy [N, Co]. Taps are grouped so each product has at
 *   least ~128 rows (all 9 taps together when Ci = 1), and dy is the same
 *   tensor in every product, so XNNPACK packs it once.
 * - 'conv': the reduction over (b, oh, ow) as a forward convolution in which
 *   batch and channels trade places: input x^T [Ci, Hp, Wp, B], filter
 *   dy^T [OH, OW, B, Co] with dilation = stride, output [Ci, KH, KW, Co].
 * Neither uses transposeA/transposeB (see matmul.ts). Which one is faster
 * depends on the shape; `chooseStrategy` encodes what bench/kernels.ts
 * measured (docs/engine.md).
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

export type BackpropFilterStrategy = 'taps' | 'conv';

/** Rows per matmul the 'taps' strategy aims for; XNNPACK's GEMM is efficient from about here. */
const TAP_GROUP_ROWS = 128;

export function chooseStrategy(g: ConvGeometry): BackpropFilterStrategy {
  // Measured (docs/engine.md): with few input channels every tap product is
  // thin and the 'conv' form pays for transposing the large dy, so 'taps'
  // wins; with wide layers the 'conv' form avoids the nine slice copies.
  return g.inC < 16 ? 'taps' : 'conv';
}

/** x spatially padded/cropped to exactly the rows and columns the filter reads. */
function paddedInput(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const needH = (g.outH - 1) * g.sh + g.kh;
  const needW = (g.outW - 1) * g.sw + g.kw;
  return padOrCrop(x, g.top, needH - g.inH - g.top, g.left, needW - g.inW - g.left);
}

function viaTaps(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const n = g.batch * g.outH * g.outW;
  const xT = tf.transpose(paddedInput(x, g), [3, 0, 1, 2]); // [Ci, B, Hp, Wp]
  const dy2 = tf.reshape(dy, [n, g.outC]);
  const taps: Array<[number, number]> = [];
  for (let i = 0; i < g.kh; i++) for (let j = 0; j < g.kw; j++) taps.push([i, j]);
  const perGroup = Math.max(1, Math.min(taps.length, Math.ceil(TAP_GROUP_ROWS / g.inC)));
  const products: tf.Tensor[] = [];
  for (let s = 0; s < taps.length; s += perGroup) {
    const slices = taps.slice(s, s + perGroup).map(([i, j]) => {
      const sl =
        g.sh === 1 && g.sw === 1
          ? tf.slice(xT, [0, 0, i, j], [g.inC, g.batch, g.outH, g.outW])
          : tf.stridedSlice(
              xT,
              [0, 0, i, j],
              [g.inC, g.batch, i + (g.outH - 1) * g.sh + 1, j + (g.outW - 1) * g.sw + 1],
              [1, 1, g.sh, g.sw],
            );
      return tf.reshape(sl, [g.inC, n]);
    });
    const a = slices.length === 1 ? slices[0] : tf.concat(slices, 0);
    products.push(tf.matMul(a, dy2)); // [taps_in_group * Ci, Co]
  }
  const all = products.length === 1 ? products[0] : tf.concat(products, 0);
  return tf.reshape(all, [g.kh, g.kw, g.inC, g.outC]);
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
    return which === 'taps' ? viaTaps(x, dy, g) : viaConv(x, dy, g);
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
