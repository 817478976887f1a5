import * as tf from '@tensorflow/tfjs-core';
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

/**
 * ZCA whitening as MTT's reference applies it to CIFAR (kornia `ZCAWhitening(eps=0.1)`): fitted on the
 * training images, flattened to D = C*H*W values, T = U diag(1 / sqrt(s + eps)) U^T where U, s are the
 * eigenvectors and eigenvalues (kornia: the SVD) of their unbiased covariance; every image x becomes
 * (x - mean) T, the training and the test images alike.
 */
export interface ZcaFit {
  /** The training images' mean, [D]. */
  mean: Float32Array;
  /** T, [D, D], symmetric. */
  transform: Float32Array;
}

/** Rows per matrix product: bounds what the tensor backend holds at once (50,000 CIFAR images are 600 MB). */
const CHUNK_ROWS = 4096;

/** Fits ZCA whitening to `n` rows of `d` values (row-major). Needs an initialised tfjs backend. */
export function fitZca(x: Float32Array, n: number, d: number, eps: number): ZcaFit {
  if (n < 2) throw new Error('ZCA whitening needs at least 2 training images');
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const mean32 = Float32Array.from(mean);
  // The covariance sums products over every image: float32 matrix products by chunks, summed in float64.
  const cov = new Float64Array(d * d);
  const mu = tf.tensor2d(mean32, [1, d]);
  for (let lo = 0; lo < n; lo += CHUNK_ROWS) {
    const rows = Math.min(CHUNK_ROWS, n - lo);
    const product = tf.tidy(() => {
      const centred = tf.sub(tf.tensor2d(x.subarray(lo * d, (lo + rows) * d), [rows, d]), mu);
      // An explicit transpose: the WASM backend's transposed matMul is slow (REFERENCE section 5).
      return tf.matMul(tf.transpose(centred), centred);
    });
    const part = takeData(product);
    for (let k = 0; k < d * d; k++) cov[k] += part[k];
  }
  mu.dispose();
  const rows2d = Array.from({ length: d }, (_, i) => Array.from(cov.subarray(i * d, (i + 1) * d), (v) => v / (n - 1)));
  const evd = new EigenvalueDecomposition(new Matrix(rows2d), { assumeSymmetric: true });
  const u = Float32Array.from(evd.eigenvectorMatrix.to1DArray());
  // The SVD of a symmetric positive semi-definite matrix: singular values are |eigenvalues| (rounding can
  // leave the smallest a hair below 0).
  const scale = Float32Array.from(evd.realEigenvalues, (s) => 1 / Math.sqrt(Math.abs(s) + eps));
  const transform = takeData(
    tf.tidy(() => {
      const eig = tf.tensor2d(u, [d, d]);
      const t = tf.matMul(tf.mul(eig, tf.tensor2d(scale, [1, d])), tf.transpose(eig));
      // Exactly symmetric, whatever the float32 summation order did.
      return tf.div(tf.add(t, tf.transpose(t)), 2);
    }),
  );
  return { mean: mean32, transform };
}

/** (x - mean) T for `n` rows of `d` values, in place. Needs an initialised tfjs backend. */
export function applyZca(x: Float32Array, n: number, d: number, fit: ZcaFit): void {
  const t = tf.tensor2d(fit.transform, [d, d]);
  const mu = tf.tensor2d(fit.mean, [1, d]);
  for (let lo = 0; lo < n; lo += CHUNK_ROWS) {
    const rows = Math.min(CHUNK_ROWS, n - lo);
    x.set(takeData(tf.tidy(() => tf.matMul(tf.sub(tf.tensor2d(x.subarray(lo * d, (lo + rows) * d), [rows, d]), mu), t))), lo * d);
  }
  tf.dispose([t, mu]);
}

/** A tensor's values, the tensor disposed (read outside tf.tidy, which would walk a returned typed array). */
function takeData(t: tf.Tensor): Float32Array {
  const values = t.dataSync() as Float32Array;
  t.dispose();
  return values;
}
