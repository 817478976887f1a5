import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { DSA_DEFAULTS, applyDsa, drawDsa, dsa, dsaStrategyFor, parseStrategy, type DsaOp, type DsaTransform } from '../src/nn/dsa.js';
import { affinePlan, resample, translatePlan } from '../src/nn/sampler.js';
import { createRng } from '../src/util/rng.js';
import { maxAbsDiff, setupBackend } from './nn-backend.js';

before(async () => {
  await setupBackend();
});

function image(n: number, h: number, w: number, c: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([n, h, w, c], 0, 1, 'float32', seed) as tf.Tensor4D;
}

function fixed(op: DsaOp, row: number[]): DsaTransform {
  return { op, siamese: true, values: [row], params: { ...DSA_DEFAULTS } };
}

/**
 * Central finite differences of f at `coords` of x versus tf.grad. f is evaluated in float32, so the
 * tolerance is relative to the gradient's scale.
 */
function checkGradient(f: (x: tf.Tensor4D) => tf.Scalar, x: tf.Tensor4D, coords: number[], eps = 1e-2, tol = 2e-2): void {
  const g = tf.grad((t: tf.Tensor) => f(t as tf.Tensor4D))(x);
  const analytic = g.dataSync();
  const base = x.dataSync();
  const scale = Math.max(1e-3, ...Array.from(analytic, Math.abs));
  for (const i of coords) {
    const plus = Float32Array.from(base);
    const minus = Float32Array.from(base);
    plus[i] += eps;
    minus[i] -= eps;
    const fp = tf.tidy(() => f(tf.tensor4d(plus, x.shape)).dataSync()[0]);
    const fm = tf.tidy(() => f(tf.tensor4d(minus, x.shape)).dataSync()[0]);
    const numeric = (fp - fm) / (2 * eps);
    assert.ok(Math.abs(numeric - analytic[i]) <= tol * scale, `coord ${i}: analytic ${analytic[i]} numeric ${numeric}`);
  }
  g.dispose();
}

describe('DSA augmentation', () => {
  it('grid sampling: the identity is exact and a 90-degree rotation is an exact permutation', () => {
    tf.tidy(() => {
      const x = image(2, 5, 5, 3, 1);
      const id = resample(x, affinePlan([1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0], 2, 5, 5));
      assert.equal(maxAbsDiff(id, x), 0);
      // theta = [[cos, -sin], [sin, cos]] at 90 degrees samples out[i][j] = x[j][W - 1 - i].
      const rot = resample(x, affinePlan([0, -1, 0, 1, 0, 0, 0, -1, 0, 1, 0, 0], 2, 5, 5));
      const expected = tf.reverse(tf.transpose(x, [0, 2, 1, 3]), 1);
      assert.ok(maxAbsDiff(rot, expected) < 1e-6);
    });
  });

  it('crop translates with zero fill, cutout zeroes a square, flip mirrors, color follows the reference formulas', () => {
    tf.tidy(() => {
      const x = tf.add(image(1, 6, 6, 1, 2), 3) as tf.Tensor4D;
      const xs = x.dataSync();
      const crop = applyDsa(x, fixed('crop', [1, -2])).dataSync();
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          const si = i + 1;
          const sj = j - 2;
          const want = si < 6 && sj >= 0 ? xs[si * 6 + sj] : 0;
          assert.equal(crop[i * 6 + j], want);
        }
      }
      // Cutout size round(6 * 0.5) = 3, centred at (2, 4): rows 1..3, columns 3..5 are zero.
      const cut = applyDsa(x, fixed('cutout', [2, 4])).dataSync();
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          const zero = i >= 1 && i <= 3 && j >= 3 && j <= 5;
          assert.equal(cut[i * 6 + j], zero ? 0 : xs[i * 6 + j]);
        }
      }
      assert.ok(maxAbsDiff(applyDsa(x, fixed('flip', [0.2])), tf.reverse(x, 2)) === 0);
      assert.ok(maxAbsDiff(applyDsa(x, fixed('flip', [0.7])), x) === 0);
      // brightness b, saturation s, contrast c with draws (0.75, 0.5, 0.25).
      const rgb = image(1, 4, 4, 3, 5);
      let want = tf.add(rgb, (0.75 - 0.5) * DSA_DEFAULTS.brightness);
      const cm = tf.mean(want, 3, true);
      want = tf.add(tf.mul(tf.sub(want, cm), 0.5 * DSA_DEFAULTS.saturation), cm);
      const im = tf.mean(want, [1, 2, 3], true);
      want = tf.add(tf.mul(tf.sub(want, im), 0.25 + DSA_DEFAULTS.contrast), im);
      assert.ok(maxAbsDiff(applyDsa(rgb, fixed('color', [0.75, 0.5, 0.25])), want) < 1e-5);
    });
  });

  it('scale and rotate are differentiable w.r.t. the images (finite differences)', () => {
    const x = image(2, 7, 7, 2, 3);
    const r = image(2, 7, 7, 2, 4);
    for (const t of [
      { op: 'scale' as const, siamese: false, values: [[1.13, 0.87], [0.9, 1.2]], params: { ...DSA_DEFAULTS } },
      { op: 'rotate' as const, siamese: false, values: [[0.2], [-0.25]], params: { ...DSA_DEFAULTS } },
    ]) {
      // A non-linear function of the output, so the check covers more than the adjoint's linearity.
      const f = (v: tf.Tensor4D) => tf.sum(tf.mul(tf.square(applyDsa(v, t)), r)) as tf.Scalar;
      checkGradient(f, x, [0, 5, 17, 40, 55, 97, 150, 195], 1e-2, 2e-2);
    }
    tf.dispose([x, r]);
  });

  it('every op family passes gradients to the images', () => {
    const x = image(2, 6, 6, 3, 6);
    const r = image(2, 6, 6, 3, 7);
    const rows: Record<DsaOp, number[][]> = {
      color: [[0.3, 0.6, 0.9], [0.1, 0.2, 0.3]],
      crop: [[1, -1], [-2, 0]],
      cutout: [[1, 2], [4, 4]],
      flip: [[0.1], [0.9]],
      scale: [[1.1, 0.9], [0.95, 1.15]],
      rotate: [[0.1], [-0.2]],
    };
    for (const [op, values] of Object.entries(rows) as [DsaOp, number[][]][]) {
      const t: DsaTransform = { op, siamese: false, values, params: { ...DSA_DEFAULTS } };
      const f = (v: tf.Tensor4D) => tf.sum(tf.mul(applyDsa(v, t), r)) as tf.Scalar;
      checkGradient(f, x, [0, 13, 50, 107, 200], 1e-2, 1e-2);
    }
    tf.dispose([x, r]);
  });

  it('second-order gradients flow through grid sampling (gradient matching needs them)', () => {
    const x = image(1, 6, 6, 1, 8);
    const r = image(1, 6, 6, 1, 9);
    const s = image(1, 6, 6, 1, 10);
    const plan = affinePlan([Math.cos(0.3), -Math.sin(0.3), 0.05, Math.sin(0.3), Math.cos(0.3), -0.1], 1, 6, 6);
    // L(x) = < d/dx sum(resample(x)^3 * r), s >, a function of x through the gradient itself.
    const f = (v: tf.Tensor4D) => {
      const inner = tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.pow(resample(u as tf.Tensor4D, plan), 3), r)))(v);
      return tf.sum(tf.mul(inner, s)) as tf.Scalar;
    };
    checkGradient(f, x, [0, 7, 14, 21, 28, 35], 1e-2, 2e-2);
    tf.dispose([x, r, s]);
  });

  it('is deterministic under a seed; siamese draws give every image and batch the same transform', () => {
    tf.tidy(() => {
      const a = image(3, 8, 8, 3, 11);
      const b = tf.concat([a, image(2, 8, 8, 3, 12)]) as tf.Tensor4D;
      for (let k = 0; k < 12; k++) {
        const seed = `siamese-${k}`;
        const ya = dsa(a, createRng(seed), { siamese: true });
        const yb = dsa(b, createRng(seed), { siamese: true });
        assert.ok(maxAbsDiff(ya, tf.slice(yb, 0, 3)) < 1e-6, `seed ${seed}`);
        assert.equal(maxAbsDiff(ya, dsa(a, createRng(seed), { siamese: true })), 0);
      }
      // A batch of one image repeated: siamese outputs are all equal, per-image ones are not.
      const same = tf.tile(image(1, 8, 8, 1, 13), [4, 1, 1, 1]) as tf.Tensor4D;
      const sia = dsa(same, createRng('r'), { strategy: 'rotate', siamese: true });
      assert.ok(maxAbsDiff(tf.slice(sia, 0, 1), tf.slice(sia, 3, 1)) < 1e-6);
      const per = dsa(same, createRng('r'), { strategy: 'rotate' });
      assert.ok(maxAbsDiff(tf.slice(per, 0, 1), tf.slice(per, 3, 1)) > 1e-3);
      assert.ok(maxAbsDiff(dsa(same, createRng('r'), { strategy: 'rotate' }), per) === 0);
      assert.ok(maxAbsDiff(dsa(same, createRng('other'), { strategy: 'rotate' }), per) > 1e-3);
    });
  });

  it('draws one op from the strategy per call, with the reference ranges; MNIST-like data gets no flip', () => {
    assert.equal(dsaStrategyFor('mnist'), 'color_crop_cutout_scale_rotate');
    assert.equal(dsaStrategyFor('fashion-mnist'), 'color_crop_cutout_scale_rotate');
    assert.equal(dsaStrategyFor('cifar10'), 'color_crop_cutout_flip_scale_rotate');
    assert.throws(() => parseStrategy('color_warp'), /unknown DSA op 'warp'/);
    const rng = createRng('ops');
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const t = drawDsa(rng, 4, 28, 28, { strategy: dsaStrategyFor('mnist') });
      seen.add(t.op);
      assert.equal(t.values.length, 4);
      for (const row of t.values) {
        if (t.op === 'scale') assert.ok(row.every((v) => v >= 1 / 1.2 && v <= 1.2));
        if (t.op === 'rotate') assert.ok(Math.abs(row[0]) <= (15 / 180) * Math.PI);
        // round(28 * 0.125) = 4 pixels of translation at most.
        if (t.op === 'crop') assert.ok(row.every((v) => Number.isInteger(v) && Math.abs(v) <= 4));
      }
    }
    assert.deepEqual([...seen].sort(), ['color', 'crop', 'cutout', 'rotate', 'scale']);
    assert.equal(drawDsa(rng, 9, 28, 28, { siamese: true }).values.length, 1);
  });

  it('translation plans drop pixels that leave the image', () => {
    const plan = translatePlan([0], [3], 1, 2, 4);
    assert.deepEqual(Array.from(plan.weight), [1, 0, 0, 0, 1, 0, 0, 0]);
    assert.deepEqual(Array.from(plan.index.subarray(0, 1)), [3]);
  });
});
