import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { createDm, type DmConfig } from '../src/distill/dm.js';
import { runDistillation, iterationRng } from '../src/distill/driver.js';
import { nchwToTensor } from '../src/distill/layout.js';
import type { DistillMethod } from '../src/distill/method.js';
import { createRng } from '../src/util/rng.js';
import { bytesEqual, methodContext, tinyData, useCpu } from './distill-helpers.js';

const ARCH = { name: 'convnet' as const, width: 4, depth: 2 };

function dmConfig(over: Partial<DmConfig> = {}): DmConfig {
  return { lr: 1, momentum: 0.5, batchReal: 64, init: 'real', arch: ARCH, dsa: false, dataset: 'tiny', ...over };
}

/** DM's loss for `images` with iteration `it`'s network and a step rng, outside the driver. */
function dmLossAt(method: DistillMethod<unknown, unknown>, ctx: ReturnType<typeof methodContext>, images: Float32Array, seed: string): number {
  const { real, ipc } = ctx;
  const state = method.beginIteration(ctx, 0, iterationRng(seed, 0));
  try {
    return tf.tidy(() => {
      const prepared = method.prepare(ctx, state, { iteration: 0, step: 0, globalStep: 0 }, createRng(`${seed}-step`));
      const syn = nchwToTensor(images, real.classes * ipc, real.channels, real.height, real.width);
      return method.loss(ctx, state, prepared, syn, new Int32Array(0), { iteration: 0, step: 0, globalStep: 0 }).dataSync()[0];
    });
  } finally {
    method.endIteration(state);
  }
}

describe('DM', () => {
  let dir: string;
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-dm-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loss equals the sum over classes of squared distances between mean embeddings (float64 reference)', () => {
    const real = tinyData({ classes: 3, perClass: 5 });
    const ctx = methodContext(real, 2);
    // batchReal above the class size: every real image of the class is used, whatever the draw order.
    const method = createDm(dmConfig({ batchReal: 100 }));
    const state = method.beginIteration(ctx, 0, createRng('net'));
    const info = { iteration: 0, step: 0, globalStep: 0 };
    const synData = Float32Array.from({ length: 6 * 64 }, (_, i) => Math.sin(i * 0.37));
    const got = tf.tidy(() => {
      const prepared = method.prepare(ctx, state, info, createRng('step'));
      return method.loss(ctx, state, prepared, nchwToTensor(synData, 6, 1, 8, 8), new Int32Array(6), info).dataSync()[0];
    });
    // Embed every image on its own, then average and compare in float64.
    const embedOne = (x: Float32Array): Float64Array =>
      Float64Array.from(tf.tidy(() => state.model.embed(state.params, nchwToTensor(x, 1, 1, 8, 8), { training: true }).dataSync()));
    let expected = 0;
    for (let c = 0; c < 3; c++) {
      const realMean = new Float64Array(embedOne(real.x.subarray(0, 64)).length);
      for (const i of real.byClass[c]) embedOne(real.x.subarray(i * 64, (i + 1) * 64)).forEach((v, k) => (realMean[k] += v / real.byClass[c].length));
      const synMean = new Float64Array(realMean.length);
      for (let j = 0; j < 2; j++) {
        const i = c * 2 + j;
        embedOne(synData.subarray(i * 64, (i + 1) * 64)).forEach((v, k) => (synMean[k] += v / 2));
      }
      for (let k = 0; k < realMean.length; k++) expected += (realMean[k] - synMean[k]) ** 2;
    }
    method.endIteration(state);
    assert.ok(expected > 1e-3, 'the test case must not be degenerate');
    assert.ok(Math.abs(got - expected) <= 1e-4 * expected, `loss ${got} vs float64 ${expected}`);
  });

  it('a few iterations from noise lower the loss on a fixed network and real batch', async () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const ctx = methodContext(real, 2);
    const method = createDm(dmConfig({ init: 'noise', lr: 1 }));
    const result = await runDistillation(method, ctx, { end: 20, runSeed: 'dm-lower' });
    const init = method.init(ctx, createRng('unused'));
    const start = await runDistillation(method, ctx, { end: 0, runSeed: 'dm-lower' });
    assert.equal(start.images.length, init.images.length);
    for (const probe of ['probe-a', 'probe-b']) {
      const before = dmLossAt(method, ctx, start.images, probe);
      const afterLoss = dmLossAt(method, ctx, result.images, probe);
      assert.ok(afterLoss < 0.8 * before, `${probe}: loss ${before} -> ${afterLoss}`);
    }
  });

  it('with DSA: the same seed gives the same bytes, another seed other bytes', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createDm(dmConfig({ dsa: true, batchReal: 8 }));
    const a = await runDistillation(method, ctx, { end: 4, runSeed: 's1' });
    const b = await runDistillation(method, ctx, { end: 4, runSeed: 's1' });
    const c = await runDistillation(method, ctx, { end: 4, runSeed: 's2' });
    assert.ok(bytesEqual(a.images, b.images));
    assert.ok(bytesEqual(a.momentum, b.momentum));
    assert.ok(!bytesEqual(a.images, c.images));
  });

  it('resuming from a checkpoint after an interruption gives the bytes of an uninterrupted run', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = createDm(dmConfig({ dsa: true, batchReal: 8 }));
    const whole = await runDistillation(method, ctx, { end: 7, runSeed: 'resume' });
    const ckDir = join(dir, 'ck');
    const controller = new AbortController();
    const checkpoint = { dir: ckDir, every: 2, fingerprint: 'fp' };
    await assert.rejects(
      runDistillation(method, ctx, {
        end: 7,
        runSeed: 'resume',
        checkpoint,
        signal: controller.signal,
        progress: { update: (done) => done === 3 && controller.abort(new Error('stop here')) },
      }),
      /stop here/,
    );
    const resumed = await runDistillation(method, ctx, { end: 7, runSeed: 'resume', checkpoint });
    assert.equal(resumed.resumedFrom, 3);
    assert.ok(bytesEqual(resumed.images, whole.images));
    assert.ok(bytesEqual(resumed.momentum, whole.momentum));
    // A checkpoint of another run (fingerprint) is ignored.
    const other = await runDistillation(method, ctx, { end: 7, runSeed: 'resume', checkpoint: { ...checkpoint, fingerprint: 'other' } });
    assert.equal(other.resumedFrom, undefined);
  });

  it('continuing a run from its final set, momentum and seed equals running longer', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createDm(dmConfig({ dsa: true, batchReal: 8 }));
    const long = await runDistillation(method, ctx, { end: 6, runSeed: 'cont' });
    const first = await runDistillation(method, ctx, { end: 3, runSeed: 'cont' });
    const rest = await runDistillation(method, ctx, {
      end: 6,
      runSeed: 'cont',
      start: { images: first.images, labels: first.labels, momentum: first.momentum, iteration: 3 },
    });
    assert.ok(bytesEqual(rest.images, long.images));
  });

  it('holds no tensors across iterations', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createDm(dmConfig({ dsa: true, batchReal: 8 }));
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    await runDistillation(method, ctx, { end: 6, runSeed: 'mem', progress: { update: () => counts.push(tf.memory().numTensors) } });
    assert.equal(new Set(counts).size, 1, `tensors per iteration: ${counts.join(', ')}`);
    assert.equal(tf.memory().numTensors, before);
  });

  it('stops with a clear error and no result when the images diverge', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createDm(dmConfig({ lr: 1e12, init: 'noise' }));
    const before = tf.memory().numTensors;
    await assert.rejects(runDistillation(method, ctx, { end: 20, runSeed: 'boom' }), /dm: the (images diverged|loss became).*lower the image learning rate/);
    assert.equal(tf.memory().numTensors, before);
  });
});
