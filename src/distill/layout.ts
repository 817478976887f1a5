import * as tf from '@tensorflow/tfjs-core';

/**
 * Artifacts store images NCHW (docs/artifacts.md), tfjs computes NHWC. These convert at the boundary
 * so that every method sees NHWC tensors and every file stays NCHW.
 */

/** An NCHW float32 array as an NHWC tensor. */
export function nchwToTensor(data: Float32Array, n: number, c: number, h: number, w: number): tf.Tensor4D {
  if (data.length !== n * c * h * w) throw new Error(`nchwToTensor: ${data.length} values for [${n}, ${c}, ${h}, ${w}]`);
  // With one channel both layouts are the same bytes: skip the transpose (MNIST, the common case).
  if (c === 1) return tf.tensor4d(data, [n, h, w, 1]);
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, c, h, w]), [0, 2, 3, 1]));
}

/** An NHWC tensor's values in NCHW order. */
export function tensorToNchw(x: tf.Tensor4D): Float32Array {
  const [, , , c] = x.shape;
  if (c === 1) return Float32Array.from(x.dataSync());
  const t = tf.transpose(x, [0, 3, 1, 2]);
  try {
    return Float32Array.from(t.dataSync());
  } finally {
    t.dispose();
  }
}

/** Copies images `indices` of an NCHW array (each `size` values) into a new array. */
export function gatherRows(x: Float32Array, size: number, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * size);
  for (let i = 0; i < indices.length; i++) out.set(x.subarray(indices[i] * size, (indices[i] + 1) * size), i * size);
  return out;
}
