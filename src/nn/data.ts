import * as tf from '@tensorflow/tfjs-core';

/** Images in memory, NHWC float32 (normalised), with labels. */
export interface LabeledImages {
  n: number;
  height: number;
  width: number;
  channels: number;
  /** [n, height, width, channels]. */
  x: Float32Array;
  /** [n] class indices. */
  y: Int32Array;
  /** Optional [n, classes] target probabilities (relabelled sets); used instead of `y` for the loss. */
  soft?: Float32Array;
}

/** Artifacts store NCHW; tfjs computes in NHWC. */
export function nchwToNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  if (c === 1) return x.slice(0, n * h * w);
  const out = new Float32Array(n * c * h * w);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * c * hw;
    for (let ch = 0; ch < c; ch++) {
      const src = base + ch * hw;
      for (let p = 0; p < hw; p++) out[base + p * c + ch] = x[src + p];
    }
  }
  return out;
}

export function nhwcToNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  if (c === 1) return x.slice(0, n * h * w);
  const out = new Float32Array(n * c * h * w);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const base = b * c * hw;
    for (let p = 0; p < hw; p++) for (let ch = 0; ch < c; ch++) out[base + ch * hw + p] = x[base + p * c + ch];
  }
  return out;
}

/** Build `LabeledImages` from artifact arrays (NCHW images, [N] labels, optional [N, K] soft labels). */
export function fromNchw(x: Float32Array, y: Int32Array, shape: [number, number, number, number], soft?: Float32Array): LabeledImages {
  const [n, c, h, w] = shape;
  if (x.length !== n * c * h * w) throw new Error(`images hold ${x.length} values, expected ${n}x${c}x${h}x${w}`);
  if (y.length !== n) throw new Error(`${y.length} labels for ${n} images`);
  return { n, height: h, width: w, channels: c, x: nchwToNhwc(x, n, c, h, w), y, soft };
}

/** Rows `idx` of a set as tensors (images NHWC, labels, soft targets when present). */
export function batchOf(set: LabeledImages, idx: ArrayLike<number>, classes?: number): { x: tf.Tensor4D; y: tf.Tensor1D; soft?: tf.Tensor2D } {
  const per = set.height * set.width * set.channels;
  const b = idx.length;
  const xb = new Float32Array(b * per);
  const yb = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    const r = idx[i];
    xb.set(set.x.subarray(r * per, (r + 1) * per), i * per);
    yb[i] = set.y[r];
  }
  const out: { x: tf.Tensor4D; y: tf.Tensor1D; soft?: tf.Tensor2D } = {
    x: tf.tensor4d(xb, [b, set.height, set.width, set.channels]),
    y: tf.tensor1d(yb, 'int32'),
  };
  if (set.soft) {
    const k = classes ?? set.soft.length / set.n;
    const sb = new Float32Array(b * k);
    for (let i = 0; i < b; i++) sb.set(set.soft.subarray(idx[i] * k, (idx[i] + 1) * k), i * k);
    out.soft = tf.tensor2d(sb, [b, k]);
  }
  return out;
}

/** Keep the first `perClass` images of each class, in order (the dataset stage's `train_limit` rule). */
export function limitPerClass(set: LabeledImages, perClass: number | null | undefined): LabeledImages {
  if (perClass == null) return set;
  const seen = new Map<number, number>();
  const keep: number[] = [];
  for (let i = 0; i < set.n; i++) {
    const c = seen.get(set.y[i]) ?? 0;
    if (c < perClass) keep.push(i);
    seen.set(set.y[i], c + 1);
  }
  return subset(set, keep);
}

/** Rows `idx` of a set, copied. */
export function subset(set: LabeledImages, idx: ArrayLike<number>): LabeledImages {
  const per = set.height * set.width * set.channels;
  const x = new Float32Array(idx.length * per);
  const y = new Int32Array(idx.length);
  const k = set.soft ? set.soft.length / set.n : 0;
  const soft = set.soft ? new Float32Array(idx.length * k) : undefined;
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    x.set(set.x.subarray(r * per, (r + 1) * per), i * per);
    y[i] = set.y[r];
    if (soft && set.soft) soft.set(set.soft.subarray(r * k, (r + 1) * k), i * k);
  }
  return { n: idx.length, height: set.height, width: set.width, channels: set.channels, x, y, soft };
}
