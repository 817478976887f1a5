import * as tf from '@tensorflow/tfjs-core';
import { realPixelRange } from './pixel-stats.js';
import type { RealData } from './real-data.js';

/**
 * Clamps every channel of `syn` ([N, H, W, C], normalised units) to the values a real pixel can take
 * (`realPixelRange`). A dataset without recorded statistics has no known range: `syn` is returned as is.
 */
export function clampToRealRange(real: Pick<RealData, 'mean' | 'std'>, syn: tf.Tensor4D): tf.Tensor4D {
  const range = realPixelRange(real);
  if (!range) return syn;
  const lo = tf.tensor1d(range.map(([l]) => l));
  const hi = tf.tensor1d(range.map(([, h]) => h));
  return tf.minimum(tf.maximum(syn, lo), hi) as tf.Tensor4D;
}
