import * as tf from '@tensorflow/tfjs-core';
import type { RealData } from './real-data.js';

/**
 * Clamps every channel of `syn` ([N, H, W, C], normalised units) to the values a real pixel in [0, 1]
 * can take: [(0 - mean) / std, (1 - mean) / std]. A dataset without recorded statistics has no known
 * range: `syn` is returned as is.
 */
export function clampToRealRange(real: Pick<RealData, 'mean' | 'std'>, syn: tf.Tensor4D): tf.Tensor4D {
  const { mean, std } = real;
  if (!mean || !std) return syn;
  const lo = tf.tensor1d(mean.map((m, c) => -m / std[c]));
  const hi = tf.tensor1d(mean.map((m, c) => (1 - m) / std[c]));
  return tf.minimum(tf.maximum(syn, lo), hi) as tf.Tensor4D;
}
