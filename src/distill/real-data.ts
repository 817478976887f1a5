import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import { gatherRows, nchwToTensor } from './layout.js';

/** The real training set as the iterative methods read it: NCHW values, labels, and indices by class. */
export interface RealData {
  /** [N, C, H, W] normalised like the dataset artifact. */
  x: Float32Array;
  y: Int32Array;
  classes: number;
  channels: number;
  height: number;
  width: number;
  /** Training-image indices of each class, in dataset order. */
  byClass: Int32Array[];
  /** Per-channel normalisation (x = (pixel - mean) / std, pixels in [0, 1]), when the dataset records it. */
  mean?: number[];
  std?: number[];
}

export function makeRealData(
  x: Float32Array,
  y: Int32Array,
  shape: { classes: number; channels: number; height: number; width: number; mean?: number[]; std?: number[] },
): RealData {
  const lists: number[][] = Array.from({ length: shape.classes }, () => []);
  for (let i = 0; i < y.length; i++) {
    const c = y[i];
    if (!(c >= 0 && c < shape.classes)) throw new Error(`training label ${c} at index ${i} is outside 0..${shape.classes - 1}`);
    lists[c].push(i);
  }
  const { classes, channels, height, width, mean, std } = shape;
  return { x, y, classes, channels, height, width, byClass: lists.map((l) => Int32Array.from(l)), ...(mean && std ? { mean, std } : {}) };
}

export function imageSize(d: RealData): number {
  return d.channels * d.height * d.width;
}

/**
 * `n` distinct random training indices of class `c` (all of them, shuffled, when the class has fewer),
 * like the reference `get_images(c, n)` (np.random.permutation(indices_class[c])[:n]).
 */
export function sampleClassIndices(d: RealData, c: number, n: number, rng: Rng): Int32Array {
  const pool = d.byClass[c];
  const take = Math.min(n, pool.length);
  // Partial Fisher-Yates: only the first `take` positions are drawn, so the cost is O(take), not O(pool).
  const idx = Int32Array.from(pool);
  const out = new Int32Array(take);
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(idx.length - i);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    out[i] = idx[i];
  }
  return out;
}

/** The images at `indices` as an NHWC tensor. */
export function realBatch(d: RealData, indices: ArrayLike<number>): tf.Tensor4D {
  return nchwToTensor(gatherRows(d.x, imageSize(d), indices), indices.length, d.channels, d.height, d.width);
}
