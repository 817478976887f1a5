import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { runDistillation } from '../src/distill/driver.js';
import { nchwToTensor } from '../src/distill/layout.js';
import type { RealData } from '../src/distill/real-data.js';
import { bnLayers, bnStatisticsLoss, createSre2l, recoverLoss, roll2d, type Sre2lConfig } from '../src/distill/sre2l.js';
import type { LoadedModel } from '../src/nn/checkpoint.js';
import { fromNchw } from '../src/nn/data.js';
import { normalize } from '../src/nn/layers.js';
import { disposeParams } from '../src/nn/sgd.js';
import { initTrainState, train } from '../src/nn/train.js';
import type { BnBatchStats } from '../src/nn/types.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { saveModel } from '../src/nn/checkpoint.js';
import { distillStage, type DistillParams } from '../src/stages/distill.js';
import { bytesEqual, methodContext, stageContext, tinyData, useCpu, viewOf, writeTinyDataset } from './distill-helpers.js';

/** Per-channel mean and biased variance over N, H, W of an NHWC array, in float64. */
function moments64(x: Float32Array, n: number, h: number, w: number, c: number): { mean: number[]; variance: number[] } {
  const mean = new Array<number>(c).fill(0);
  const variance = new Array<number>(c).fill(0);
  const count = n * h * w;
  for (let i = 0; i < count; i++) for (let k = 0; k < c; k++) mean[k] += x[i * c + k] / count;
  for (let i = 0; i < count; i++) for (let k = 0; k < c; k++) variance[k] += (x[i * c + k] - mean[k]) ** 2 / count;
  return { mean, variance };
}

const norm2 = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

/** A small batch-norm teacher trained on `real`: the squeeze step. */
async function squeeze(real: RealData): Promise<LoadedModel> {
  const model = buildModel({ name: 'convnet', width: 4, depth: 2, norm: 'batch' }, { channels: 1, height: 8, width: 8, classes: real.classes });
  const set = fromNchw(real.x, real.y, [real.y.length, 1, 8, 8]);
  const state = await train(model, set, null, { epochs: 6, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batch: 12 }, createRng('squeeze'), initTrainState(model, createRng('init')));
  disposeParams(state.buffers);
  return { model, params: state.params, bnState: state.bnState };
}

describe('SRe2L', () => {
  let dir: string;
  let real: RealData;
  let teacher: LoadedModel;
  const config = (over: Partial<Sre2lConfig> = {}): Sre2lConfig => ({
    lr: 0.1,
    beta1: 0.5,
    beta2: 0.9,
    eps: 1e-8,
    schedule: 'cosine',
    rBn: 0.01,
    firstBnMultiplier: 10,
    jitter: 2,
    flip: true,
    init: 'noise',
    dataset: 'tiny',
    teacher,
    ...over,
  });

  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-sre2l-'));
    real = tinyData({ classes: 3, perClass: 12 });
    teacher = await squeeze(real);
  });
  after(() => {
    disposeParams(teacher.params, teacher.bnState);
    rmSync(dir, { recursive: true, force: true });
  });

  it('batch norm in evaluation mode records the float64 moments of its input and still normalises with the running statistics', () => {
    const rng = createRng('bn-moments');
    const [n, h, w, c] = [3, 2, 3, 2];
    const data = Float32Array.from({ length: n * h * w * c }, () => 2 * rng.normal() + 0.5);
    tf.tidy(() => {
      const x = tf.tensor4d(data, [n, h, w, c]);
      const params = { 'l.weight': tf.tensor1d([1.5, 0.5]), 'l.bias': tf.tensor1d([0.1, -0.2]) };
      const bnState = { 'l.running_mean': tf.tensor1d([0.3, -1]), 'l.running_var': tf.tensor1d([2, 0.5]) };
      const stats: Record<string, BnBatchStats> = {};
      const withStats = normalize('batch', params, 'l', x, { training: false, bnState, bnStats: stats });
      const plain = normalize('batch', params, 'l', x, { training: false, bnState });
      assert.ok(bytesEqual(withStats.dataSync(), plain.dataSync()), 'recording must not change the output');
      const want = moments64(data, n, h, w, c);
      const gotMean = Array.from(stats.l.mean.dataSync());
      const gotVar = Array.from(stats.l.variance.dataSync());
      for (let k = 0; k < c; k++) {
        assert.ok(Math.abs(gotMean[k] - want.mean[k]) < 1e-5, `mean ${gotMean[k]} vs ${want.mean[k]}`);
        assert.ok(Math.abs(gotVar[k] - want.variance[k]) < 1e-5 * want.variance[k], `variance ${gotVar[k]} vs ${want.variance[k]}`);
      }
      assert.equal(stats.l.count, n * h * w);
    });
  });

  it('the statistics loss is sum_l w_l (||mu_l - running_mean_l|| + ||var_l - running_var_l||), w_0 = first_bn_multiplier (float64)', () => {
    const rng = createRng('bn-loss');
    const shapes: [number, number, number, number][] = [[4, 3, 3, 2], [4, 2, 2, 3]];
    const layers = ['a', 'b'];
    let want = 0;
    const got = tf.tidy(() => {
      const stats: Record<string, BnBatchStats> = {};
      const bnState: Record<string, tf.Tensor> = {};
      layers.forEach((name, l) => {
        const [n, h, w, c] = shapes[l];
        const data = Float32Array.from({ length: n * h * w * c }, () => rng.normal() * (l + 1) + l);
        const rm = Array.from({ length: c }, () => rng.normal());
        const rv = Array.from({ length: c }, () => 0.5 + rng.next());
        const x = tf.tensor4d(data, [n, h, w, c]);
        const params = { [`${name}.weight`]: tf.ones([c]), [`${name}.bias`]: tf.zeros([c]) };
        bnState[`${name}.running_mean`] = tf.tensor1d(rm);
        bnState[`${name}.running_var`] = tf.tensor1d(rv);
        normalize('batch', params, name, x, { training: false, bnState, bnStats: stats });
        const m = moments64(data, n, h, w, c);
        want += (l === 0 ? 7 : 1) * (norm2(m.mean, rm) + norm2(m.variance, rv));
      });
      return bnStatisticsLoss(stats, bnState, layers, 7).dataSync()[0];
    });
    assert.ok(want > 0.1, 'the case must not be degenerate');
    assert.ok(Math.abs(got - want) < 1e-5 * want, `loss ${got} vs float64 ${want}`);
  });

  it("the teacher's layers come in forward order and record the same first-layer statistics in either mode", () => {
    assert.deepEqual(bnLayers(teacher.model), ['block0.norm', 'block1.norm']);
    tf.tidy(() => {
      const x = nchwToTensor(real.x.subarray(0, 6 * 64), 6, 1, 8, 8);
      const evalStats: Record<string, BnBatchStats> = {};
      const trainStats: Record<string, BnBatchStats> = {};
      teacher.model.forward(teacher.params, x, { training: false, bnState: teacher.bnState, bnStats: evalStats });
      teacher.model.forward(teacher.params, x, { training: true, bnStats: trainStats });
      assert.deepEqual(Object.keys(evalStats), ['block0.norm', 'block1.norm']);
      assert.ok(bytesEqual(evalStats['block0.norm'].mean.dataSync(), trainStats['block0.norm'].mean.dataSync()));
      assert.ok(bytesEqual(evalStats['block0.norm'].variance.dataSync(), trainStats['block0.norm'].variance.dataSync()));
    });
  });

  it('roll2d is torch.roll over H and W: out[i][j] = x[(i - dh) mod H][(j - dw) mod W]', () => {
    const [n, h, w, c] = [2, 3, 4, 2];
    const data = Float32Array.from({ length: n * h * w * c }, (_, i) => i);
    for (const [dh, dw] of [[1, 3], [0, 2], [4, 0], [2, 5]]) {
      const got = tf.tidy(() => roll2d(tf.tensor4d(data, [n, h, w, c]), dh, dw).dataSync());
      for (let b = 0; b < n; b++)
        for (let i = 0; i < h; i++)
          for (let j = 0; j < w; j++)
            for (let k = 0; k < c; k++) {
              const si = (((i - dh) % h) + h) % h;
              const sj = (((j - dw) % w) + w) % w;
              assert.equal(got[((b * h + i) * w + j) * c + k], data[((b * h + si) * w + sj) * c + k], `shift (${dh}, ${dw}) at ${b},${i},${j},${k}`);
            }
    }
  });

  it('a few recover iterations from noise lower the recover loss (CE and statistics) on the unshifted set', async () => {
    const ctx = methodContext(real, 2);
    const method = createSre2l(config());
    const start = await runDistillation(method, ctx, { end: 0, runSeed: 'lower' });
    const result = await runDistillation(method, ctx, { end: 30, runSeed: 'lower' });
    const layers = bnLayers(teacher.model);
    const measure = (images: Float32Array): { total: number; ce: number; bn: number } =>
      tf.tidy(() => {
        const x = nchwToTensor(images, 6, 1, 8, 8);
        const r = recoverLoss(teacher, layers, x, tf.tensor1d(start.labels, 'int32'), 0.01, 10);
        return { total: r.total.dataSync()[0], ce: r.ce.dataSync()[0], bn: r.bn.dataSync()[0] };
      });
    const before = measure(start.images);
    const afterRun = measure(result.images);
    assert.ok(afterRun.total < 0.5 * before.total, `loss ${before.total} -> ${afterRun.total}`);
    assert.ok(afterRun.ce < before.ce && afterRun.bn < before.bn, `ce ${before.ce} -> ${afterRun.ce}, bn ${before.bn} -> ${afterRun.bn}`);
    assert.equal(result.optimizerState.kind, 'adam');
    assert.equal(result.optimizerState.step, 30);
  });

  it('clamps the pixels to the range of real ones after every step when the dataset records its normalisation', async () => {
    // Noise init in N(0, 1) and a large lr put pixels outside [-2, 2]; mean 0.5, std 0.25 make that the valid range.
    const free = await runDistillation(createSre2l(config({ lr: 1 })), methodContext(real, 2), { end: 3, runSeed: 'clamp' });
    assert.ok(free.images.some((v) => Math.abs(v) > 2.01), 'without statistics nothing is clamped');
    const normalised = { ...real, mean: [0.5], std: [0.25] };
    const clamped = await runDistillation(createSre2l(config({ lr: 1 })), methodContext(normalised, 2), { end: 3, runSeed: 'clamp' });
    assert.ok(clamped.images.every((v) => v >= -2 - 1e-6 && v <= 2 + 1e-6));
    assert.ok(clamped.images.some((v) => Math.abs(Math.abs(v) - 2) < 1e-6), 'some pixels sit on the bounds');
  });

  it('the same seed gives the same bytes, another seed other bytes', async () => {
    const ctx = methodContext(real, 1);
    const method = createSre2l(config({ jitter: 3 }));
    const a = await runDistillation(method, ctx, { end: 5, runSeed: 's1' });
    const b = await runDistillation(method, ctx, { end: 5, runSeed: 's1' });
    const c = await runDistillation(method, ctx, { end: 5, runSeed: 's2' });
    assert.ok(bytesEqual(a.images, b.images));
    assert.ok(bytesEqual(a.optimizerState.buffers.v, b.optimizerState.buffers.v));
    assert.ok(!bytesEqual(a.images, c.images));
  });

  it('resuming from a checkpoint after an interruption gives the bytes of an uninterrupted run', async () => {
    const ctx = methodContext(real, 1);
    const method = createSre2l(config({ jitter: 3 }));
    const whole = await runDistillation(method, ctx, { end: 7, runSeed: 'resume' });
    const checkpoint = { dir: join(dir, 'ck'), every: 2, fingerprint: 'fp' };
    const controller = new AbortController();
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
    assert.ok(bytesEqual(resumed.optimizerState.buffers.m, whole.optimizerState.buffers.m));
  });

  it('views: shifts within [0, jitter], flips only where the dataset allows them', () => {
    const ctx = methodContext(real, 1);
    const info = { iteration: 0, step: 0, globalStep: 0 };
    const draws = (dataset: string, flip: boolean): { shifts: Set<number>; flips: number } => {
      const m = createSre2l(config({ jitter: 2, dataset, flip }));
      const shifts = new Set<number>();
      let flips = 0;
      for (let i = 0; i < 40; i++) {
        const p = m.prepare(ctx, null, info, createRng(`view-${i}`));
        shifts.add(p.shiftH).add(p.shiftW);
        if (p.flip) flips++;
      }
      return { shifts, flips };
    };
    const tiny = draws('tiny', true);
    assert.deepEqual([...tiny.shifts].sort(), [0, 1, 2]);
    assert.ok(tiny.flips > 5 && tiny.flips < 35, `flips ${tiny.flips} of 40`);
    assert.equal(draws('mnist', true).flips, 0);
    assert.equal(draws('fashion-mnist', true).flips, 0);
    assert.equal(draws('tiny', false).flips, 0);
  });

  it('distill stage: runs SRe2L from its teacher input and keeps the Adam state; without the input it refuses', async () => {
    const dsDir = join(dir, 'dataset');
    writeTinyDataset(dsDir, { classes: 3, perClass: 12, size: 8 });
    const teacherDir = join(dir, 'teacher');
    saveModel(teacherDir, teacher.model, teacher.params, teacher.bnState);
    const params: DistillParams = {
      method: 'sre2l',
      ipc: 1,
      seed: 0,
      iterations: 3,
      lr_img: 0.25,
      beta1: 0.5,
      beta2: 0.9,
      eps: 1e-8,
      schedule: 'cosine',
      r_bn: 0.01,
      first_bn_multiplier: 10,
      jitter: 2,
      flip: true,
      init: 'noise',
    };
    const inputs = { dataset: viewOf('dataset', dsDir), teacher: viewOf('pretrain', teacherDir) };
    const { ctx, outDir } = stageContext('distill', params, inputs, dir);
    await distillStage.run(ctx);
    const meta = JSON.parse(readFileSync(join(outDir, 'meta.json'), 'utf8')) as { method: string; iterations: number; optimizer: { kind: string; lr: number } };
    assert.equal(meta.method, 'sre2l');
    assert.equal(meta.iterations, 3);
    assert.deepEqual([meta.optimizer.kind, meta.optimizer.lr], ['adam', 0.25]);
    assert.ok(existsSync(join(outDir, 'images.npy')));
    assert.ok(existsSync(join(outDir, 'state', 'adam_v.npy')));
    await assert.rejects(distillStage.run(stageContext('distill', params, { dataset: inputs.dataset }, dir).ctx), /no input 'teacher'/);
  });

  it('refuses a teacher without batch norm or of another shape', () => {
    const noBn = buildModel({ name: 'convnet', width: 4, depth: 2, norm: 'instance' }, { channels: 1, height: 8, width: 8, classes: 3 });
    const params = noBn.init(createRng('nobn'));
    const ctx = methodContext(real, 1);
    assert.throws(() => createSre2l(config({ teacher: { model: noBn, params, bnState: {} } })).init(ctx, createRng('x')), /no batch norm.*norm to 'batch'/);
    disposeParams(params);
    const other = methodContext(tinyData({ classes: 4, perClass: 3 }), 1);
    assert.throws(() => createSre2l(config()).init(other, createRng('x')), /3 classes, the dataset has 1x8x8 and 4/);
  });
});
