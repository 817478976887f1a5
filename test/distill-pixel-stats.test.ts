import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { writeImageSet } from '../src/distill/image-set.js';
import { tensorToNchw } from '../src/distill/layout.js';
import { clampToRealRange } from '../src/distill/pixel-range.js';
import { pixelStats } from '../src/distill/pixel-stats.js';
import { createRng } from '../src/util/rng.js';
import { useCpu } from './distill-helpers.js';

/** Float64 statistics by nested loops over n, c, h, w, with a two-pass variance. */
function reference(images: Float32Array, [n, c, h, w]: number[], mean: number[], std: number[]) {
  const values: number[] = [];
  let outside = 0;
  let excess = 0;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const lo = (0 - mean[ch]) / std[ch];
      const hi = (1 - mean[ch]) / std[ch];
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = images[((i * c + ch) * h + y) * w + x];
          values.push(v);
          if (v < lo - 1e-5 || v > hi + 1e-5) outside++;
          excess += Math.max(0, lo - v, v - hi);
        }
      }
    }
  }
  const m = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length;
  return { mean: m, std: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values), outside: outside / values.length, distance: excess / values.length };
}

describe('pixel statistics of an image set', () => {
  let dir: string;
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-pixels-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('on a hand-made set: range [-2, 2] from mean 0.5 and std 0.25, two of six pixels outside', () => {
    const s = pixelStats(Float32Array.of(-3, -2, 0, 2, 2.5, 0.5), [1, 1, 2, 3], { mean: [0.5], std: [0.25] });
    assert.equal(s.min, -3);
    assert.equal(s.max, 2.5);
    assert.equal(s.outside_real_range, 2 / 6);
    // 1 below -2 and 0.5 above 2, over six pixels.
    assert.ok(Math.abs((s.outside_distance ?? 0) - 1.5 / 6) < 1e-12);
    assert.ok(Math.abs(s.mean - 0) < 1e-12);
    assert.ok(Math.abs(s.std - Math.sqrt((9 + 4 + 0 + 4 + 6.25 + 0.25) / 6)) < 1e-12);
    // Without recorded normalisation there is no range to be outside of.
    assert.equal(pixelStats(Float32Array.of(1, 2), [1, 1, 1, 2], {}).outside_real_range, null);
    assert.equal(pixelStats(Float32Array.of(1, 2), [1, 1, 1, 2], {}).outside_distance, null);
  });

  it('per-channel ranges in NCHW order match a float64 loop over n, c, h, w on random sets', () => {
    for (let trial = 0; trial < 5; trial++) {
      const rng = createRng(`pixels-${trial}-${Date.now()}`);
      const shape = [2 + rng.int(3), 1 + rng.int(3), 1 + rng.int(4), 1 + rng.int(4)] as [number, number, number, number];
      const size = shape.reduce((a, b) => a * b, 1);
      const images = Float32Array.from({ length: size }, () => (rng.next() - 0.5) * 8);
      const mean = Array.from({ length: shape[1] }, () => rng.next());
      const std = Array.from({ length: shape[1] }, () => 0.2 + rng.next());
      const got = pixelStats(images, shape, { mean, std });
      const want = reference(images, shape, mean, std);
      assert.ok(Math.abs(got.mean - want.mean) < 1e-9, `mean ${got.mean} vs ${want.mean}`);
      assert.ok(Math.abs(got.std - want.std) < 1e-9, `std ${got.std} vs ${want.std}`);
      assert.equal(got.min, want.min);
      assert.equal(got.max, want.max);
      assert.equal(got.outside_real_range, want.outside);
      assert.ok(Math.abs((got.outside_distance ?? NaN) - want.distance) < 1e-9, `distance ${got.outside_distance} vs ${want.distance}`);
    }
  });

  it('a set clamped to the real range has no pixel outside it (float32 rounding of the bounds included)', () => {
    const mean = [0.2860, 0.45];
    const std = [0.3530, 0.27];
    const shape = [3, 2, 4, 5] as const;
    const rng = createRng('clamp-then-count');
    const nhwc = tf.tensor4d(Float32Array.from({ length: 3 * 4 * 5 * 2 }, () => (rng.next() - 0.5) * 20), [3, 4, 5, 2]);
    const clamped = clampToRealRange({ mean, std }, nhwc);
    const images = tensorToNchw(clamped);
    tf.dispose([nhwc, clamped]);
    const s = pixelStats(images, shape, { mean, std });
    assert.equal(s.outside_real_range, 0);
    assert.ok((s.outside_distance ?? 1) < 1e-6);
    assert.ok(s.min < -0.8 && s.max > 2, 'the bounds are reached');
  });

  it('writeImageSet records the statistics in meta.json under `pixels` and returns them', () => {
    const images = Float32Array.of(-1, 0, 1, 4);
    const out = join(dir, 'set');
    mkdirSync(out);
    const returned = writeImageSet(
      out,
      { images, labels: Int32Array.of(0, 1, 0, 1), shape: [4, 1, 1, 1], meta: { method: 'test' } },
      { mean: [0], std: [1], classes: 2 },
    );
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { method: string; pixels: unknown };
    assert.equal(meta.method, 'test');
    assert.deepEqual(meta.pixels, returned);
    assert.equal(returned.outside_real_range, 2 / 4);
  });
});
