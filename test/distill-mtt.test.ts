import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { normalizeArch } from '../src/dag/arch.js';
import { baseGradientNorm, runDistillation } from '../src/distill/driver.js';
import { nchwToTensor } from '../src/distill/layout.js';
import type { DistillMethod, MethodContext } from '../src/distill/method.js';
import { createMethod, type IterativeParams } from '../src/distill/methods.js';
import { createMtt, studentBatches, SYN_LR, unrolledMatchLoss, type MttConfig } from '../src/distill/mtt.js';
import type { Model, Params } from '../src/nn/types.js';
import { distillStage } from '../src/stages/distill.js';
import { pretrainStage, type PretrainParams } from '../src/stages/pretrain.js';
import { readNpy } from '../src/store/npy.js';
import { createRng } from '../src/util/rng.js';
import { bytesEqual, methodContext, stageContext, tinyData, useCpu, viewOf, writeTinyDataset } from './distill-helpers.js';

// ---------------------------------------------------------------------------------------------------
// An independent float64 MTT on a linear softmax classifier (logits = x W + b), two student steps.

const PIX = 4; // 1 x 2 x 2 images (one channel: NCHW and NHWC orders coincide)
const CLS = 3;

/** The linear model as a zoo Model, so the production unroll runs on it. */
const LINEAR: Model = {
  arch: { name: 'mlp' },
  input: { channels: 1, height: 2, width: 2, classes: CLS },
  paramSpecs: [
    { name: 'w', shape: [PIX, CLS] },
    { name: 'b', shape: [CLS] },
  ],
  bnSpecs: [],
  init: () => {
    throw new Error('unused');
  },
  initBnState: () => ({}),
  forward: (p, x) => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], PIX]), p.w), p.b) as tf.Tensor2D,
  embed: (_p, x) => tf.reshape(x, [x.shape[0], PIX]) as tf.Tensor2D,
  paramCount: () => PIX * CLS + CLS,
};

/** Parameters as one float64 vector: w row-major [PIX, CLS], then b. */
type Flat = Float64Array;

function studentStep(p: Flat, x: Float64Array, labels: Int32Array, idx: Int32Array, lr: number): Flat {
  const g = new Float64Array(p.length);
  for (const i of idx) {
    const logits = Array.from({ length: CLS }, (_, c) => {
      let z = p[PIX * CLS + c];
      for (let k = 0; k < PIX; k++) z += x[i * PIX + k] * p[k * CLS + c];
      return z;
    });
    const mx = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - mx));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < CLS; c++) {
      const d = (e[c] / sum - (labels[i] === c ? 1 : 0)) / idx.length;
      for (let k = 0; k < PIX; k++) g[k * CLS + c] += x[i * PIX + k] * d;
      g[PIX * CLS + c] += d;
    }
  }
  return p.map((v, j) => v - lr * g[j]);
}

function referenceLoss(start: Flat, target: Flat, x: Float64Array, labels: Int32Array, batches: Int32Array[], lr: number): number {
  let p = start;
  for (const idx of batches) p = studentStep(p, x, labels, idx, lr);
  let num = 0;
  let den = 0;
  for (let j = 0; j < p.length; j++) {
    num += (p[j] - target[j]) ** 2;
    den += (start[j] - target[j]) ** 2;
  }
  return num / den;
}

function paramsOf(flat: Flat): Params {
  return {
    w: tf.tensor(Float32Array.from(flat.subarray(0, PIX * CLS)), [PIX, CLS]),
    b: tf.tensor(Float32Array.from(flat.subarray(PIX * CLS)), [CLS]),
  };
}

// ---------------------------------------------------------------------------------------------------
// Tiny experts: real pretrain stages (snapshots every epoch) on a generated dataset.

const ARCH = { name: 'convnet' as const, width: 4, depth: 2 };
const EXPERT_EPOCHS = 4;

function expertParams(seed: number): PretrainParams {
  return { arch: ARCH, epochs: EXPERT_EPOCHS, lr: 0.05, momentum: 0, weight_decay: 0, batch: 12, augment: 'none', decay_epoch: null, snapshots: true, test_every: 0, seed };
}

function mttConfig(experts: string[], over: Partial<MttConfig> = {}): MttConfig {
  return {
    lr: 1,
    momentum: 0.5,
    lrLr: 1e-5,
    lrTeacher: 0.05,
    synSteps: 3,
    batchSyn: 3,
    maxStartEpoch: 2,
    expertEpochsMatched: 2,
    init: 'real',
    arch: ARCH,
    dsa: false,
    clipPixels: false,
    dataset: 'tiny',
    experts,
    ...over,
  };
}

/** The mean MTT loss of `images` and syn_lr over every (expert, start epoch), with fixed batches. */
function meanLoss(method: DistillMethod<unknown, unknown>, ctx: MethodContext, images: Float32Array, synLr: number, experts: number, starts: number): number {
  const { real, ipc } = ctx;
  let total = 0;
  for (let e = 0; e < experts; e++) {
    for (let t = 0; t < starts; t++) {
      const state = { expert: e, startEpoch: t };
      const info = { iteration: 0, step: 0, globalStep: 0 };
      total += tf.tidy(() => {
        const prepared = method.prepare(ctx, state, info, createRng(`fixed-${e}-${t}`));
        const syn = nchwToTensor(images, real.classes * ipc, real.channels, real.height, real.width);
        const labels = Int32Array.from({ length: real.classes * ipc }, (_, i) => Math.floor(i / ipc));
        return method.loss(ctx, state, prepared, syn, labels, info, { [SYN_LR]: tf.scalar(synLr) }).dataSync()[0];
      });
    }
  }
  return total / (experts * starts);
}

describe('MTT', () => {
  let dir: string;
  let datasetDir: string;
  const experts: string[] = [];
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-mtt-'));
    datasetDir = join(dir, 'dataset');
    writeTinyDataset(datasetDir, { classes: 3, perClass: 12, size: 8 });
    for (let i = 0; i < 2; i++) {
      const { ctx, outDir } = stageContext('pretrain', expertParams(i), { dataset: viewOf('dataset', datasetDir) }, dir, `expert-${i}`);
      await pretrainStage.run(ctx);
      experts.push(outDir);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('student batches: a reshuffled set cut into chunks, taken from the last, reshuffled when exhausted', () => {
    let calls = 0;
    const perm = (): Int32Array => Int32Array.from(calls++ === 0 ? [4, 0, 3, 1, 2] : [2, 1, 0, 4, 3]);
    const got = studentBatches(5, 2, 4, perm).map((b) => Array.from(b));
    assert.deepEqual(got, [[2], [3, 1], [4, 0], [3]]);
  });

  it('the unrolled loss and its gradients (images, syn_lr) match an independent float64 two-step computation', () => {
    const rng = createRng('linear');
    const n = 4;
    const labels = Int32Array.from([0, 1, 2, 0]);
    const x = Float64Array.from({ length: n * PIX }, () => rng.normal());
    const start = Float64Array.from({ length: PIX * CLS + CLS }, () => 0.5 * rng.normal());
    const target = Float64Array.from(start, (v) => v + 0.3 * rng.normal());
    const batches = [Int32Array.from([0, 2]), Int32Array.from([3, 1])];
    const lr = 0.7;
    const expected = referenceLoss(start, target, x, labels, batches, lr);

    const x32 = Float32Array.from(x);
    let value = NaN;
    let gx = new Float64Array(0);
    let glr = NaN;
    tf.tidy(() => {
      const sp = paramsOf(start);
      const tp = paramsOf(target);
      let dist: tf.Tensor = tf.scalar(0);
      for (const k of ['w', 'b']) dist = tf.add(dist, tf.sum(tf.square(tf.sub(sp[k], tp[k]))));
      const f = (syn: tf.Tensor, s: tf.Tensor): tf.Scalar => unrolledMatchLoss(LINEAR, sp, tp, dist as tf.Scalar, syn as tf.Tensor4D, labels, s, batches, [null, null]);
      const syn = nchwToTensor(x32, n, 1, 2, 2);
      const s = tf.scalar(lr);
      const [g1, g2] = tf.grads(f)([syn, s]);
      value = f(syn, s).dataSync()[0];
      gx = Float64Array.from(g1.dataSync());
      glr = g2.dataSync()[0];
    });
    assert.ok(expected > 0.05, `not degenerate (${expected})`);
    assert.ok(Math.abs(value - expected) < 1e-5 * Math.max(1, expected), `loss ${value} vs float64 ${expected}`);

    // Finite differences of the float64 function: the second-order path (through each step's gradient) included.
    const h = 1e-4;
    const fdX = Float64Array.from({ length: x.length }, (_, i) => {
      const plus = Float64Array.from(x);
      const minus = Float64Array.from(x);
      plus[i] += h;
      minus[i] -= h;
      return (referenceLoss(start, target, plus, labels, batches, lr) - referenceLoss(start, target, minus, labels, batches, lr)) / (2 * h);
    });
    const fdLr = (referenceLoss(start, target, x, labels, batches, lr + h) - referenceLoss(start, target, x, labels, batches, lr - h)) / (2 * h);
    const scale = Math.max(...Array.from(fdX, Math.abs));
    assert.ok(scale > 1e-3, 'image gradient not degenerate');
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(gx[i] - fdX[i]) < 1e-3 * scale, `d/dx[${i}]: ${gx[i]} vs ${fdX[i]}`);
    assert.ok(Math.abs(glr - fdLr) < 1e-3 * Math.abs(fdLr) + 1e-6, `d/dsyn_lr: ${glr} vs ${fdLr}`);
  });

  it('a few iterations lower the loss over every expert and start epoch; syn_lr is learned', async () => {
    const real = tinyData({ classes: 3, perClass: 12, seed: 'tiny-train' });
    const ctx = methodContext(real, 2);
    // As many student steps as the experts took in M epochs (2 x 3 batches), as the reference balances them.
    const method = createMtt(mttConfig(experts, { lr: 1, synSteps: 6, lrLr: 1e-4 })) as DistillMethod<unknown, unknown>;
    const start = await runDistillation(method, ctx, { end: 0, runSeed: 'mtt-lower' });
    const result = await runDistillation(method, ctx, { end: 10, runSeed: 'mtt-lower' });
    const init = 0.05;
    const before = meanLoss(method, ctx, start.images, init, 2, 2);
    const lrAfter = result.learned[SYN_LR].value[0];
    const afterLoss = meanLoss(method, ctx, result.images, lrAfter, 2, 2);
    assert.ok(afterLoss < 0.8 * before, `loss ${before} -> ${afterLoss}`);
    // Both the images and the learned lr contribute.
    const imagesOnly = meanLoss(method, ctx, result.images, init, 2, 2);
    const lrOnly = meanLoss(method, ctx, start.images, lrAfter, 2, 2);
    assert.ok(imagesOnly < 0.9 * before, `images only: ${before} -> ${imagesOnly}`);
    assert.ok(lrOnly < before, `syn_lr only (${init} -> ${lrAfter}): ${before} -> ${lrOnly}`);
    assert.equal(result.lastTerms[SYN_LR], lrAfter);
  });

  it('clip_pixels clamps the set to the range of real pixels after every update; off, the set leaves it', async () => {
    // mean 0.5, std 0.25: real pixels in [0, 1] are [-2, 2] in normalised units; a large pixel lr leaves that range.
    const real = { ...tinyData({ classes: 3, perClass: 12, seed: 'tiny-train' }), mean: [0.5], std: [0.25] };
    const ctx = methodContext(real, 2);
    const over = { lr: 3000, lrLr: 1e-7, init: 'noise' as const };
    const free = await runDistillation(createMtt(mttConfig(experts, over)) as DistillMethod<unknown, unknown>, ctx, { end: 3, runSeed: 'clip' });
    assert.ok(free.images.some((v) => Math.abs(v) > 2.01), 'without the option nothing is clamped');
    const clipped = await runDistillation(createMtt(mttConfig(experts, { ...over, clipPixels: true })) as DistillMethod<unknown, unknown>, ctx, { end: 3, runSeed: 'clip' });
    assert.ok(clipped.images.every((v) => v >= -2 - 1e-6 && v <= 2 + 1e-6));
    assert.ok(clipped.images.some((v) => Math.abs(Math.abs(v) - 2) < 1e-6), 'some pixels sit on the bounds');
    // The first update sees the same images and draws in both runs: only the projection differs.
    const first = await runDistillation(createMtt(mttConfig(experts, over)) as DistillMethod<unknown, unknown>, ctx, { end: 1, runSeed: 'clip' });
    const firstClipped = await runDistillation(createMtt(mttConfig(experts, { ...over, clipPixels: true })) as DistillMethod<unknown, unknown>, ctx, { end: 1, runSeed: 'clip' });
    for (let i = 0; i < first.images.length; i++) assert.equal(firstClipped.images[i], Math.min(2, Math.max(-2, first.images[i])), `pixel ${i}`);
  });

  it('baseGradientNorm (MetaDD relative weights) reads the learned syn_lr and is the next update over the pixel lr', async () => {
    const real = tinyData({ classes: 3, perClass: 12, seed: 'tiny-train' });
    const ctx = methodContext(real, 1);
    const method = createMtt(mttConfig(experts, { lr: 10, momentum: 0 })) as DistillMethod<unknown, unknown>;
    const base = await runDistillation(method, ctx, { end: 2, runSeed: 'mtt-cal' });
    const at = { images: base.images, labels: base.labels, iteration: 2, runSeed: 'mtt-cal', learned: base.learned };
    const norm = baseGradientNorm(method, ctx, at);
    const next = await runDistillation(method, ctx, { end: 3, runSeed: 'mtt-cal', start: { ...at, optimizerState: base.optimizerState } });
    let sq = 0;
    for (let i = 0; i < base.images.length; i++) sq += (base.images[i] - next.images[i]) ** 2;
    assert.ok(norm > 0);
    assert.ok(Math.abs(Math.sqrt(sq) / 10 - norm) < 1e-3 * norm, `update / lr ${Math.sqrt(sq) / 10} vs measured ${norm}`);
    // Another syn_lr, another gradient: the learned value is read, not its initial value.
    const other = baseGradientNorm(method, ctx, { ...at, learned: { [SYN_LR]: { ...base.learned[SYN_LR], value: Float32Array.of(base.learned[SYN_LR].value[0] * 3) } } });
    assert.ok(Math.abs(other - norm) > 1e-3 * norm);
  });

  it('same seed, same bytes; resuming from a checkpoint equals an uninterrupted run (DSA on)', async () => {
    const real = tinyData({ classes: 3, perClass: 12, seed: 'tiny-train' });
    const ctx = methodContext(real, 1);
    const method = createMtt(mttConfig(experts, { dsa: true, batchSyn: 2, lrLr: 1e-3 })) as DistillMethod<unknown, unknown>;
    const a = await runDistillation(method, ctx, { end: 4, runSeed: 'mtt' });
    const b = await runDistillation(method, ctx, { end: 4, runSeed: 'mtt' });
    const c = await runDistillation(method, ctx, { end: 4, runSeed: 'mtt-other' });
    assert.ok(bytesEqual(a.images, b.images));
    assert.ok(bytesEqual(a.learned[SYN_LR].value, b.learned[SYN_LR].value));
    assert.ok(!bytesEqual(a.images, c.images));

    const checkpoint = { dir: join(dir, 'ck'), every: 1, fingerprint: 'mtt' };
    const controller = new AbortController();
    await assert.rejects(
      runDistillation(method, ctx, {
        end: 4,
        runSeed: 'mtt',
        checkpoint,
        signal: controller.signal,
        progress: { update: (done) => done === 2 && controller.abort(new Error('stop here')) },
      }),
      /stop here/,
    );
    const resumed = await runDistillation(method, ctx, { end: 4, runSeed: 'mtt', checkpoint });
    assert.equal(resumed.resumedFrom, 2);
    assert.ok(bytesEqual(resumed.images, a.images));
    assert.ok(bytesEqual(resumed.momentum, a.momentum));
    assert.ok(bytesEqual(resumed.learned[SYN_LR].value, a.learned[SYN_LR].value));
    assert.ok(bytesEqual(resumed.learned[SYN_LR].momentum, a.learned[SYN_LR].momentum));
  });

  it('the distill stage runs mtt from its expert inputs and writes learned_lr and the state files', async () => {
    const params = {
      method: 'mtt',
      ipc: 1,
      seed: 0,
      iterations: 2,
      experts: 2,
      max_start_epoch: 2,
      expert_epochs_matched: 2,
      syn_steps: 2,
      batch_syn: null,
      lr_img: 1,
      momentum: 0.5,
      lr_lr: 1e-3,
      lr_teacher: 0.05,
      init: 'real',
      arch: normalizeArch(ARCH),
      dsa: true,
    };
    const inputs = { dataset: viewOf('dataset', datasetDir), expert0: viewOf('pretrain', experts[0]), expert1: viewOf('pretrain', experts[1]) };
    const { ctx, outDir, records } = stageContext('distill', params, inputs, dir, 'mtt-stage');
    await distillStage.run(ctx);
    const meta = JSON.parse(readFileSync(join(outDir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(meta.method, 'mtt');
    assert.equal(typeof meta.learned_lr, 'number');
    assert.notEqual(meta.learned_lr, 0.05);
    assert.deepEqual(meta.optimizer, { kind: 'sgd', lr: 1, momentum: 0.5 });
    for (const f of ['momentum.npy', 'optimizer.json', 'learned.json', 'learned_syn_lr.npy', 'learned_syn_lr_momentum.npy']) assert.ok(existsSync(join(outDir, 'state', f)), f);
    assert.ok(records.some((r) => r.type === 'metric' && r.key === SYN_LR));
    // The set's pixel statistics, in meta.json and as metrics.
    const pixels = meta.pixels as { std: number; min: number; max: number; outside_real_range: number };
    const written = readNpy(join(outDir, 'images.npy')).data as Float32Array;
    assert.equal(pixels.min, Math.min(...written));
    assert.equal(pixels.max, Math.max(...written));
    assert.ok(records.some((r) => r.type === 'metric' && r.key === 'pixel_std' && r.value === pixels.std));
    // The stage parameter reaches the method (the metadd stage builds its method from the same parameters).
    const dirs = { dataset: datasetDir, expert0: experts[0], expert1: experts[1] };
    assert.equal(createMethod(params as unknown as IterativeParams, 'tiny', dirs).constrain, undefined);
    assert.equal(typeof createMethod({ ...params, clip_pixels: true } as unknown as IterativeParams, 'tiny', dirs).constrain, 'function');
    // Missing expert inputs are named.
    assert.throws(() => createMethod(params as unknown as IterativeParams, 'tiny', { dataset: datasetDir, expert0: experts[0] }), /missing input 'expert1'/);
    // An expert of another architecture is refused.
    const wrong = createMtt(mttConfig(experts, { arch: { name: 'convnet', width: 5, depth: 2 } }));
    const mctx = methodContext(tinyData({ classes: 3, perClass: 12, seed: 'tiny-train' }), 1);
    assert.throws(
      () => tf.tidy(() => void wrong.prepare(mctx, { expert: 0, startEpoch: 0 } as never, { iteration: 0, step: 0, globalStep: 0 }, createRng('x'))),
      /does not have the student's parameters/,
    );
  });
});
