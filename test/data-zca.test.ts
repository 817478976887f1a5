import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { applyZca, fitZca } from '../src/data/zca.js';
import { createRng } from '../src/util/rng.js';
import { setupBackend } from './nn-backend.js';

before(async () => {
  await setupBackend();
});

/** n rows of d correlated values (a random mixing of independent normals with unequal scales), row-major. */
function correlated(seed: string, n: number, d: number): Float32Array {
  const rng = createRng(seed);
  const mix = Array.from({ length: d * d }, () => rng.normal());
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: d }, (_, k) => rng.normal() * (k + 1) + 0.5);
    for (let j = 0; j < d; j++) {
      let s = 3 * (j % 2);
      for (let k = 0; k < d; k++) s += z[k] * mix[k * d + j];
      x[i * d + j] = s;
    }
  }
  return x;
}

/** The unbiased covariance of n rows of d values, in float64 (independent of the code under test). */
function covariance(x: Float32Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const c = new Float64Array(d * d);
  for (let i = 0; i < n; i++) for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) c[a * d + b] += ((x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b])) / (n - 1);
  return c;
}

const matmul = (a: ArrayLike<number>, b: ArrayLike<number>, d: number): Float64Array => {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) out[i * d + j] += a[i * d + k] * b[k * d + j];
  return out;
};

test('ZCA: T is symmetric and T T (C + eps I) = I, C the float64 covariance: T is (C + eps I)^(-1/2)', () => {
  const [n, d, eps] = [600, 9, 0.1];
  const x = correlated('zca-fit', n, d);
  const fit = fitZca(x, n, d, eps);
  const c = covariance(x, n, d);
  for (let j = 0; j < d; j++) c[j * d + j] += eps;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.equal(fit.transform[i * d + j], fit.transform[j * d + i]);
  const product = matmul(matmul(fit.transform, fit.transform, d), c, d);
  let worst = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) worst = Math.max(worst, Math.abs(product[i * d + j] - (i === j ? 1 : 0)));
  assert.ok(worst < 1e-3, `|T T (C + eps I) - I| up to ${worst}`);
  // Positive definite (the principal root, not another one): x^T T x > 0 for random x.
  const rng = createRng('zca-pd');
  for (let t = 0; t < 20; t++) {
    const v = Array.from({ length: d }, () => rng.normal());
    let q = 0;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) q += v[i] * fit.transform[i * d + j] * v[j];
    assert.ok(q > 0);
  }
});

test('ZCA: whitened training rows have covariance close to the identity when eps is small; test rows use the training fit', () => {
  const [n, d] = [800, 6];
  const x = correlated('zca-apply', n, d);
  const fit = fitZca(x, n, d, 1e-6);
  const whitened = Float32Array.from(x);
  applyZca(whitened, n, d, fit);
  const c = covariance(whitened, n, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.ok(Math.abs(c[i * d + j] - (i === j ? 1 : 0)) < 2e-3, `cov[${i}][${j}] = ${c[i * d + j]}`);
  // A row outside the fit is centred on the training mean and multiplied by T.
  const row = Float32Array.from({ length: d }, (_, j) => j - 2);
  const expected = Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += (row[k] - fit.mean[k]) * fit.transform[k * d + j];
    return s;
  });
  applyZca(row, 1, d, fit);
  expected.forEach((v, j) => assert.ok(Math.abs(row[j] - v) < 1e-4 * Math.max(1, Math.abs(v))));
});
