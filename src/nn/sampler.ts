import * as tf from '@tensorflow/tfjs-core';

/**
 * A fixed linear resampling of NHWC images: every output pixel is a weighted sum of `taps` input pixels
 * of the same image, out[n, p, :] = sum_t weight[n, p, t] * x[n, index[n, p, t], :].
 * Bilinear grid sampling (scale, rotate) has 4 taps, integer translation (crop) has 1.
 *
 * Differentiation: tfjs' gradient of `gather` needs UnsortedSegmentSum, which the WASM backend lacks,
 * so the resampling is a custom op whose gradient is its adjoint, itself a gather over a transposed
 * index table. The two ops are each other's gradient, so derivatives of any order (DC's gradient of a
 * gradient) stay within gather, multiply and sum.
 */
export interface Resampling {
  n: number;
  hIn: number;
  wIn: number;
  hOut: number;
  wOut: number;
  taps: number;
  /** [n * hOut * wOut * taps] pixel index within the image (0..hIn*wIn-1); any valid index where weight is 0. */
  index: Int32Array;
  weight: Float32Array;
}

interface Table {
  rows: number;
  taps: number;
  /** Global source row in the [n * pixels, C] matrix. */
  index: Int32Array;
  weight: Float32Array;
}

function forwardTable(r: Resampling): Table {
  const perOut = r.hOut * r.wOut;
  const perIn = r.hIn * r.wIn;
  const index = new Int32Array(r.index.length);
  for (let n = 0; n < r.n; n++) {
    const base = n * perOut * r.taps;
    for (let i = 0; i < perOut * r.taps; i++) index[base + i] = r.index[base + i] + n * perIn;
  }
  return { rows: r.n * perOut, taps: r.taps, index, weight: r.weight };
}

/** The transpose: for every input pixel, the output pixels (and weights) it contributes to. */
function adjointTable(r: Resampling): Table {
  const perOut = r.hOut * r.wOut;
  const perIn = r.hIn * r.wIn;
  const rows = r.n * perIn;
  const count = new Int32Array(rows);
  for (let n = 0; n < r.n; n++) {
    for (let p = 0; p < perOut; p++) {
      for (let t = 0; t < r.taps; t++) {
        const k = (n * perOut + p) * r.taps + t;
        if (r.weight[k] !== 0) count[n * perIn + r.index[k]]++;
      }
    }
  }
  let taps = 1;
  for (let i = 0; i < rows; i++) if (count[i] > taps) taps = count[i];
  const index = new Int32Array(rows * taps);
  const weight = new Float32Array(rows * taps);
  const fill = new Int32Array(rows);
  for (let n = 0; n < r.n; n++) {
    for (let p = 0; p < perOut; p++) {
      for (let t = 0; t < r.taps; t++) {
        const k = (n * perOut + p) * r.taps + t;
        const w = r.weight[k];
        if (w === 0) continue;
        const q = n * perIn + r.index[k];
        const slot = q * taps + fill[q]++;
        index[slot] = n * perOut + p;
        weight[slot] = w;
      }
    }
  }
  return { rows, taps, index, weight };
}

/** rows x C result of sum_t weight * src[index] for src [*, C]. */
function applyTable(src: tf.Tensor2D, table: Table): tf.Tensor2D {
  const c = src.shape[1];
  const gathered = tf.gather(src, tf.tensor1d(table.index, 'int32'));
  if (table.taps === 1) return tf.mul(gathered, tf.tensor2d(table.weight, [table.rows, 1])) as tf.Tensor2D;
  const weighted = tf.mul(tf.reshape(gathered, [table.rows, table.taps, c]), tf.tensor3d(table.weight, [table.rows, table.taps, 1]));
  return tf.sum(weighted, 1) as tf.Tensor2D;
}

/** Apply `r` to x [n, hIn, wIn, C]; differentiable w.r.t. x to any order. */
export function resample(x: tf.Tensor4D, r: Resampling): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (n !== r.n || h !== r.hIn || w !== r.wIn) {
    throw new Error(`resample: plan for [${r.n}, ${r.hIn}, ${r.wIn}, *], got [${x.shape.join(', ')}]`);
  }
  const fwd = forwardTable(r);
  let adj: Table | null = null;
  const adjoint = (): Table => (adj ??= adjointTable(r));
  const inShape: [number, number] = [r.n * r.hIn * r.wIn, c];
  const outShape: [number, number] = [r.n * r.hOut * r.wOut, c];

  // The op and its adjoint are each other's gradient; both close over the same tables.
  const op: (t: tf.Tensor) => tf.Tensor2D = tf.customGrad((t: tf.Tensor | tf.GradSaveFunc) => ({
    value: applyTable(tf.reshape(t as tf.Tensor, inShape), fwd),
    gradFunc: (dy: tf.Tensor2D) => opT(dy),
  }));
  const opT: (t: tf.Tensor) => tf.Tensor2D = tf.customGrad((t: tf.Tensor | tf.GradSaveFunc) => ({
    value: applyTable(tf.reshape(t as tf.Tensor, outShape), adjoint()),
    gradFunc: (dy: tf.Tensor2D) => op(dy),
  }));
  return tf.reshape(op(tf.reshape(x, inShape)), [r.n, r.hOut, r.wOut, c]);
}

/**
 * Bilinear sampling plan for per-image 2x3 affine matrices `theta` (row-major, 6 per image), with the
 * exact semantics of PyTorch `F.grid_sample(x, F.affine_grid(theta, size))` as the reference calls them:
 * align_corners = False, zero padding. theta maps output coordinates (x right, y down, both in [-1, 1])
 * to input coordinates.
 */
export function affinePlan(theta: Float64Array | number[], n: number, h: number, w: number): Resampling {
  const index = new Int32Array(n * h * w * 4);
  const weight = new Float32Array(n * h * w * 4);
  for (let b = 0; b < n; b++) {
    const [a, bb, c, d, e, f] = Array.from({ length: 6 }, (_, i) => theta[b * 6 + i]);
    for (let i = 0; i < h; i++) {
      const yo = (2 * i + 1) / h - 1;
      for (let j = 0; j < w; j++) {
        const xo = (2 * j + 1) / w - 1;
        const xs = a * xo + bb * yo + c;
        const ys = d * xo + e * yo + f;
        const ix = ((xs + 1) * w - 1) / 2;
        const iy = ((ys + 1) * h - 1) / 2;
        const x0 = Math.floor(ix);
        const y0 = Math.floor(iy);
        const fx = ix - x0;
        const fy = iy - y0;
        const k = ((b * h + i) * w + j) * 4;
        const corners: [number, number, number][] = [
          [y0, x0, (1 - fy) * (1 - fx)],
          [y0, x0 + 1, (1 - fy) * fx],
          [y0 + 1, x0, fy * (1 - fx)],
          [y0 + 1, x0 + 1, fy * fx],
        ];
        corners.forEach(([yy, xx, wt], t) => {
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && wt !== 0) {
            index[k + t] = yy * w + xx;
            weight[k + t] = wt;
          }
        });
      }
    }
  }
  return { n, hIn: h, wIn: w, hOut: h, wOut: w, taps: 4, index, weight };
}

/** out[i, j] = x[i + dy, j + dx], zero outside the image (per-image integer shifts). */
export function translatePlan(dy: ArrayLike<number>, dx: ArrayLike<number>, n: number, h: number, w: number): Resampling {
  const index = new Int32Array(n * h * w);
  const weight = new Float32Array(n * h * w);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const si = i + dy[b];
        const sj = j + dx[b];
        if (si >= 0 && si < h && sj >= 0 && sj < w) {
          const k = (b * h + i) * w + j;
          index[k] = si * w + sj;
          weight[k] = 1;
        }
      }
    }
  }
  return { n, hIn: h, wIn: w, hOut: h, wOut: w, taps: 1, index, weight };
}
