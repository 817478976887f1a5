/**
 * The Conv2DBackpropFilter the engine used before its SIMD kernel (through
 * tfjs's XNNPACK kernels only), kept here so that the kernel benchmark can
 * time both side by side in one run: 'patches' below 16 input channels
 * (dW^T = dy^T x im2col patches), 'conv' from 16 (the reduction as a forward
 * convolution with batch and channels swapped).
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, padOrCrop, type ConvGeometry, type PadAttr } from '../src/engine/kernels/conv_util.js';

function paddedInput(x: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const needH = (g.outH - 1) * g.sh + g.kh;
  const needW = (g.outW - 1) * g.sw + g.kw;
  return padOrCrop(x, g.top, needH - g.inH - g.top, g.left, needW - g.inW - g.left);
}

function viaPatches(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const n = g.batch * g.outH * g.outW;
  const xT = tf.transpose(paddedInput(x, g), [3, 0, 1, 2]); // [Ci, B, Hp, Wp]
  const slices: tf.Tensor[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      slices.push(tf.reshape(tf.slice(xT, [0, 0, i, j], [g.inC, g.batch, g.outH, g.outW]), [g.inC, n]));
    }
  }
  const patches = tf.transpose(tf.reshape(tf.stack(slices), [g.kh * g.kw * g.inC, n])); // [N, T*Ci]
  const dyT = tf.transpose(tf.reshape(dy, [n, g.outC])); // [Co, N]
  return tf.reshape(tf.transpose(tf.matMul(dyT, patches)), [g.kh, g.kw, g.inC, g.outC]);
}

function viaConv(x: tf.Tensor4D, dy: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const xT = tf.transpose(paddedInput(x, g), [3, 1, 2, 0]); // [Ci, Hp, Wp, B]
  const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, Co]
  const out = tf.conv2d(xT, dyT as tf.Tensor4D, 1, 'valid', 'NHWC'); // [Ci, KH, KW, Co]
  return tf.transpose(out, [1, 2, 0, 3]);
}

/** Stride 1 only (the benchmark's shapes). */
export function xnnpackBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  pad: PadAttr,
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = convGeometry(x.shape, filterShape, 1, pad, undefined);
    return g.inC < 16 ? viaPatches(x, dy, g) : viaConv(x, dy, g);
  });
}
