/**
 * Conv2DBackpropInput for the wasm backend: our SIMD kernel for layers with
 * few input channels (src/engine/simd/assembly/conv2d_backprop_input.ts),
 * a forward convolution on XNNPACK for the rest.
 *
 * dx[i] = sum over k of dy_d[i - top' + k] * flip(W)[k], with
 * flip(W)[kh,kw,co,ci] = W[KH-1-kh, KW-1-kw, ci, co], top' = KH-1-top, and dy_d
 * dy itself for stride 1 or dy with (stride-1) zeros between its rows and
 * columns otherwise. The forward conv runs on XNNPACK; the stock wasm kernel
 * is a scalar loop (ConvNet-3 layer 2, batch 256: about 12 s against 1 s).
 * Padding amounts that come out negative (a conv padded by more than KH-1,
 * like ConvNet-3's first layer on 28x28) become crops of the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor } from '../registry.js';
import { runSimdKernel } from '../simd/module.js';
import { convGeometry, fromNHWC, nhwcShape, padOrCrop, toNHWC, type PadAttr, type RoundingMode } from './conv_util.js';

/**
 * W[KH-1-kh, KW-1-kw, ci, co] -> [kh, kw, co, ci]. The flip is a gather of the
 * KH*KW tap rows in reverse order (whole rows, memcpy-like) rather than
 * tf.reverse, whose wasm kernel took ~26 ms for a 3x3x128x128 filter.
 */
export function flipTranspose(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const taps = kh * kw;
  const order = tf.tensor1d(Array.from({ length: taps }, (_, i) => taps - 1 - i), 'int32');
  const flipped = tf.gather(tf.reshape(filter, [taps, ci, co]), order, 0);
  return tf.reshape(tf.transpose(flipped, [0, 2, 1]), [kh, kw, co, ci]);
}

/** Inserts (s-1) zeros after every row/column; returns [B, OH*sh, OW*sw, C]. */
function zeroInsert(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [b, h, w, c] = dy.shape;
  const six = tf.reshape(dy, [b, h, 1, w, 1, c]);
  const padded = tf.pad(six, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return tf.reshape(padded, [b, h * sh, w * sw, c]);
}

/**
 * Input channels up to which the SIMD kernel runs. XNNPACK's forward convolution with that few output
 * channels runs at 2-3 GFLOP/s (docs/engine.md).
 */
export const SIMD_MAX_INPUT_CHANNELS = 4;

/** dx for NHWC dy and a [KH, KW, Ci, Co] filter. */
export type BackpropInputRoute = (
  inputShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | [number, number],
  pad: PadAttr,
  dimRoundingMode?: RoundingMode,
) => tf.Tensor4D;

/** dx by our SIMD kernel (any Ci; used up to SIMD_MAX_INPUT_CHANNELS). */
export const conv2dBackpropInputSimd: BackpropInputRoute = (inputShape, dy, filter, strides, pad, dimRoundingMode) => {
  const g = convGeometry(inputShape, filter.shape, strides, pad, dimRoundingMode);
  return runSimdKernel(
    g,
    [dy, filter],
    [...inputShape],
    (k) => k.conv2dBackpropInputScratchBytes(),
    (k, [dyAt, filterAt], out, scratch) => k.conv2dBackpropInput(dyAt, filterAt, out, scratch, g.batch),
  ) as tf.Tensor4D;
};

/** dx as a forward convolution on XNNPACK (any Ci; used above SIMD_MAX_INPUT_CHANNELS). */
export const conv2dBackpropInputXnnpack: BackpropInputRoute = (inputShape, dy, filter, strides, pad, dimRoundingMode) =>
  tf.tidy(() => {
    const g = convGeometry(inputShape, filter.shape, strides, pad, dimRoundingMode);
    const flipped = flipTranspose(filter);
    const dyd = zeroInsert(dy, g.sh, g.sw);
    const rows = dyd.shape[1];
    const cols = dyd.shape[2];
    // Output size = rows + top' + bottom' - KH + 1 must equal inH.
    const top = g.kh - 1 - g.top;
    const left = g.kw - 1 - g.left;
    const bottom = g.inH - rows + g.kh - 1 - top;
    const right = g.inW - cols + g.kw - 1 - left;
    // Negative pads: pad by 0 instead, compute the extra output rows, crop them.
    const pt = Math.max(0, top);
    const pb = Math.max(0, bottom);
    const pl = Math.max(0, left);
    const pr = Math.max(0, right);
    const full = tf.conv2d(dyd, flipped, 1, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
    const r0 = pt - top;
    const c0 = pl - left;
    if (r0 === 0 && c0 === 0 && full.shape[1] === g.inH && full.shape[2] === g.inW) return full;
    return padOrCrop(full, -r0, -(full.shape[1] - r0 - g.inH), -c0, -(full.shape[2] - c0 - g.inW));
  });

/** dx by whichever route is faster for the shape. */
export const conv2dBackpropInputNHWC: BackpropInputRoute = (inputShape, ...rest) =>
  (inputShape[3] <= SIMD_MAX_INPUT_CHANNELS ? conv2dBackpropInputSimd : conv2dBackpropInputXnnpack)(inputShape, ...rest);

const conv2dBackpropInputKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const dy = asTensor<tf.Rank.R4>(inputs.dy, 'dy');
  const filter = asTensor<tf.Rank.R4>(inputs.filter, 'filter');
  const shape = nhwcShape(a.inputShape, a.dataFormat);
  return tf.tidy(() =>
    fromNHWC(
      conv2dBackpropInputNHWC(shape, toNHWC(dy, a.dataFormat), filter, a.strides, a.pad as PadAttr, a.dimRoundingMode),
      a.dataFormat,
    ),
  );
};

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInputKernel,
};
