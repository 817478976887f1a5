import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classMeans, layoutAgainst } from '../src/report/layout.js';
import { createRng } from '../src/util/rng.js';

/** Pearson's r by the textbook sums, in float64: an independent route to what layout.ts computes by centring and scaling. */
function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sa += a[i];
    sb += b[i];
    sab += a[i] * b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
  }
  return (n * sab - sa * sb) / Math.sqrt((n * saa - sa * sa) * (n * sbb - sb * sb));
}

test('layout: correlation with the own class mean and nearest-mean accuracy against a direct computation', () => {
  const rng = createRng(`layout-${Date.now()}`);
  const classes = 4, size = 3 * 5 * 5, perClass = 7;
  // Real images: a class pattern plus noise.
  const patterns = Array.from({ length: classes }, () => Float64Array.from({ length: size }, () => rng.next() * 2 - 1));
  const n = classes * perClass;
  const x = new Float32Array(n * size);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < size; j++) x[i * size + j] = patterns[y[i]][j] + (rng.next() - 0.5);
  }
  const means = classMeans(x, y, classes, size);
  const direct = Array.from({ length: classes }, (_, c) => {
    const m = new Float64Array(size);
    y.forEach((yc, i) => {
      if (yc === c) for (let j = 0; j < size; j++) m[j] += x[i * size + j] / perClass;
    });
    return m;
  });
  // A set of random images with random labels.
  const setN = 9;
  const images = Float32Array.from({ length: setN * size }, () => rng.next() * 4 - 2);
  const labels = Int32Array.from({ length: setN }, () => Math.floor(rng.next() * classes));
  const got = layoutAgainst(means, { images, labels });
  let own = 0, nearest = 0;
  for (let i = 0; i < setN; i++) {
    const img = images.subarray(i * size, (i + 1) * size);
    const r = direct.map((m) => pearson(img, m));
    own += r[labels[i]];
    if (r.indexOf(Math.max(...r)) === labels[i]) nearest++;
  }
  assert.ok(Math.abs(got.ownCorrelation - own / setN) < 1e-9, `${got.ownCorrelation} vs ${own / setN}`);
  assert.equal(got.nearestMean, nearest / setN);

  // Hand-made sets: the class means themselves (r 1, all nearest), shifted and scaled (the same: a
  // correlation ignores both), labelled as the next class (none nearest), negated (r -1).
  const asSet = (f: (c: number, j: number) => number, label: (c: number) => number) => ({
    images: Float32Array.from({ length: classes * size }, (_, k) => f(Math.floor(k / size), k % size)),
    labels: Int32Array.from({ length: classes }, (_, c) => label(c)),
  });
  const same = layoutAgainst(means, asSet((c, j) => direct[c][j], (c) => c));
  assert.ok(Math.abs(same.ownCorrelation - 1) < 1e-6 && same.nearestMean === 1);
  const affine = layoutAgainst(means, asSet((c, j) => 3 * direct[c][j] + 7, (c) => c));
  assert.ok(Math.abs(affine.ownCorrelation - 1) < 1e-6 && affine.nearestMean === 1);
  assert.equal(layoutAgainst(means, asSet((c, j) => direct[c][j], (c) => (c + 1) % classes)).nearestMean, 0);
  const negated = layoutAgainst(means, asSet((c, j) => -direct[c][j], (c) => c));
  assert.ok(Math.abs(negated.ownCorrelation + 1) < 1e-6 && negated.nearestMean === 0);
  // A class with no training image has no mean to compare with.
  assert.throws(() => classMeans(x, y.map((c) => (c === 2 ? 1 : c)), classes, size), /class 2 has no training image/);
});
