import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { readLearnedState, readOptimizerState, writeLearnedState, writeOptimizerState } from '../src/distill/checkpoint.js';
import { runDistillation, type DistillResult, type DriverOptions } from '../src/distill/driver.js';
import type { DistillMethod, ImageOptimizer, LearnedVariableSpec, MethodContext } from '../src/distill/method.js';
import type { Tracker } from '../src/tracking/records.js';
import { bytesEqual, methodContext, tinyData, useCpu } from './distill-helpers.js';

/**
 * Two classes of one 1x4x4 image each: with one channel, NCHW and NHWC orders coincide, so the float64
 * references below index the pixels the way the driver's tensors do.
 */
const N = 2;
const SIZE = 16;
const TOTAL = N * SIZE;

function ctxOf(): MethodContext {
  return methodContext(tinyData({ classes: 2, perClass: 3, size: 4 }), 1);
}

const A = Float64Array.from({ length: TOTAL }, (_, i) => 0.5 + (i % 5) * 0.4);
const B = Float64Array.from({ length: TOTAL }, (_, i) => Math.cos(i * 0.7));
const X0 = Float32Array.from({ length: TOTAL }, (_, i) => Math.sin(i * 1.3));
const TARGET = Float64Array.from({ length: TOTAL }, (_, i) => 0.3 * Math.sin(i * 0.45 + 1));

/**
 * A deterministic method with L = 0.5 sum a x^2 + b x (gradient a x + b), `steps` image updates per
 * iteration; with `learned`, L = mean((s x - target)^2) for a learned scalar s instead.
 */
function quadMethod(optimizer: ImageOptimizer, steps: number, learned?: LearnedVariableSpec): DistillMethod<null, null> {
  return {
    name: 'quad',
    optimizer,
    learned: learned ? [learned] : undefined,
    stepsPerIteration: steps,
    init: () => ({ images: Float32Array.from(X0), labels: Int32Array.from([0, 1]) }),
    beginIteration: () => null,
    prepare: () => null,
    loss(_ctx, _s, _p, syn, _labels, _info, vars) {
      if (learned) {
        const s = vars?.[learned.name];
        if (!s) throw new Error('no learned variable');
        return tf.mean(tf.square(tf.sub(tf.mul(s, syn), tf.tensor(Float32Array.from(TARGET), syn.shape)))) as tf.Scalar;
      }
      const a = tf.tensor(Float32Array.from(A), syn.shape);
      const b = tf.tensor(Float32Array.from(B), syn.shape);
      return tf.add(tf.mul(0.5, tf.sum(tf.mul(a, tf.square(syn)))), tf.sum(tf.mul(b, syn))) as tf.Scalar;
    },
    endIteration: () => undefined,
  };
}

/** PyTorch's Adam on the quadratic, in float64, `steps` updates from X0 (global steps 0..steps-1 of `total`). */
function adamReference(opt: Extract<ImageOptimizer, { kind: 'adam' }>, steps: number, total: number): Float64Array {
  const x = Float64Array.from(X0);
  const m = new Float64Array(TOTAL);
  const v = new Float64Array(TOTAL);
  for (let t = 0; t < steps; t++) {
    const lr = opt.schedule === 'cosine' ? 0.5 * opt.lr * (1 + Math.cos((Math.PI * t) / total)) : opt.lr;
    const k = t + 1;
    for (let i = 0; i < TOTAL; i++) {
      const g = A[i] * x[i] + B[i];
      m[i] = opt.beta1 * m[i] + (1 - opt.beta1) * g;
      v[i] = opt.beta2 * v[i] + (1 - opt.beta2) * g * g;
      const mHat = m[i] / (1 - opt.beta1 ** k);
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - opt.beta2 ** k) + opt.eps;
      x[i] -= (lr * mHat) / denom;
    }
  }
  return x;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const ADAM: Extract<ImageOptimizer, { kind: 'adam' }> = { kind: 'adam', lr: 0.05, beta1: 0.5, beta2: 0.9, eps: 1e-8, schedule: 'cosine' };

/** Runs to `end`, interrupting once after `stopAt` iterations with checkpoints every iteration, then resuming. */
async function interruptedRun<S, P>(method: DistillMethod<S, P>, ctx: MethodContext, end: number, stopAt: number, dir: string, extra: Partial<DriverOptions> = {}): Promise<DistillResult> {
  const checkpoint = { dir, every: 1, fingerprint: 'fp' };
  const controller = new AbortController();
  await assert.rejects(
    runDistillation(method, ctx, {
      end,
      runSeed: 'optim',
      checkpoint,
      signal: controller.signal,
      progress: { update: (done) => done === stopAt && controller.abort(new Error('stop here')) },
      ...extra,
    }),
    /stop here/,
  );
  const resumed = await runDistillation(method, ctx, { end, runSeed: 'optim', checkpoint, ...extra });
  assert.equal(resumed.resumedFrom, stopAt);
  return resumed;
}

describe('driver: pixel optimiser kinds', () => {
  let dir: string;
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-optim-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('Adam (cosine and constant) follows a float64 computation of PyTorch Adam with bias correction', async () => {
    const ctx = ctxOf();
    for (const schedule of ['cosine', 'constant'] as const) {
      const opt = { ...ADAM, schedule };
      // 6 iterations x 2 updates: T = 12 global steps for the cosine.
      const result = await runDistillation(quadMethod(opt, 2), ctx, { end: 6, runSeed: 'adam' });
      const expected = adamReference(opt, 12, 12);
      const moved = maxAbsDiff(expected, X0);
      assert.ok(moved > 0.1, `the reference must move the pixels (moved ${moved})`);
      const err = maxAbsDiff(result.images, expected);
      assert.ok(err < 2e-5, `${schedule}: max |float32 - float64| = ${err}`);
      assert.equal(result.optimizerState.kind, 'adam');
      assert.equal(result.optimizerState.step, 12);
      assert.deepEqual(Object.keys(result.optimizerState.buffers).sort(), ['m', 'v']);
    }
    // Without bias correction, or with another schedule length, the same check fails: the tolerance discriminates.
    const wrongT = adamReference(ADAM, 12, 6);
    const ok = await runDistillation(quadMethod(ADAM, 2), ctx, { end: 6, runSeed: 'adam' });
    assert.ok(maxAbsDiff(ok.images, wrongT) > 1e-3);
    // Cost per iteration: wall and CPU time, both measured (one thread: CPU time cannot exceed wall time by much).
    assert.ok(ok.secondsPerIteration > 0 && ok.cpuSecondsPerIteration > 0, `${ok.secondsPerIteration} ${ok.cpuSecondsPerIteration}`);
    assert.ok(ok.cpuSecondsPerIteration < 2 * ok.secondsPerIteration + 0.01, `${ok.secondsPerIteration} ${ok.cpuSecondsPerIteration}`);
  });

  it('Adam: an interrupted run resumes from its checkpoint (moments and step count) to the same bytes', async () => {
    const ctx = ctxOf();
    const method = quadMethod(ADAM, 2);
    const whole = await runDistillation(method, ctx, { end: 6, runSeed: 'optim' });
    const resumed = await interruptedRun(method, ctx, 6, 3, join(dir, 'adam-ck'));
    assert.ok(bytesEqual(resumed.images, whole.images));
    assert.equal(resumed.optimizerState.step, whole.optimizerState.step);
    for (const k of ['m', 'v']) assert.ok(bytesEqual(resumed.optimizerState.buffers[k], whole.optimizerState.buffers[k]), k);
  });

  it('Adam: continuing from a written optimiser state equals running longer; SGD momentum cannot start Adam', async () => {
    const ctx = ctxOf();
    // Constant lr: a cosine's T is each run's own end, so a run of 3 then 3 more is not a run of 6.
    const method = quadMethod({ ...ADAM, schedule: 'constant' }, 2);
    const whole = await runDistillation(method, ctx, { end: 6, runSeed: 'optim' });
    const first = await runDistillation(method, ctx, { end: 3, runSeed: 'optim' });
    const stateDir = join(dir, 'adam-state');
    writeOptimizerState(stateDir, first.optimizerState, first.shape);
    const read = readOptimizerState(stateDir);
    assert.ok(read);
    const second = await runDistillation(method, ctx, { end: 6, runSeed: 'optim', start: { images: first.images, labels: first.labels, optimizerState: read, iteration: 3 } });
    assert.ok(bytesEqual(second.images, whole.images));
    await assert.rejects(
      runDistillation(method, ctx, { end: 6, runSeed: 'optim', start: { images: first.images, labels: first.labels, momentum: first.momentum, iteration: 3 } }),
      /momentum buffer cannot start a 'adam' optimiser/,
    );
  });

  it('SGD: state files keep momentum.npy, and a legacy folder with only momentum.npy reads as SGD', async () => {
    const ctx = ctxOf();
    const sgd: ImageOptimizer = { kind: 'sgd', lr: 0.1, momentum: 0.9 };
    const method = quadMethod(sgd, 1);
    const whole = await runDistillation(method, ctx, { end: 4, runSeed: 'optim' });
    const first = await runDistillation(method, ctx, { end: 2, runSeed: 'optim' });
    assert.ok(bytesEqual(first.momentum, first.optimizerState.buffers.momentum));
    const stateDir = join(dir, 'sgd-state');
    writeOptimizerState(stateDir, first.optimizerState, first.shape);
    rmSync(join(stateDir, 'optimizer.json'));
    const read = readOptimizerState(stateDir);
    assert.equal(read?.kind, 'sgd');
    const viaState = await runDistillation(method, ctx, { end: 4, runSeed: 'optim', start: { images: first.images, labels: first.labels, optimizerState: read, iteration: 2 } });
    const viaMomentum = await runDistillation(method, ctx, { end: 4, runSeed: 'optim', start: { images: first.images, labels: first.labels, momentum: first.momentum, iteration: 2 } });
    assert.ok(bytesEqual(viaState.images, whole.images));
    assert.ok(bytesEqual(viaMomentum.images, whole.images));
    // SGD from X0 in float64: v = 0.9 v + g; x -= 0.1 v.
    const x = Float64Array.from(X0);
    const v = new Float64Array(TOTAL);
    for (let t = 0; t < 4; t++) {
      for (let i = 0; i < TOTAL; i++) {
        v[i] = 0.9 * v[i] + A[i] * x[i] + B[i];
        x[i] -= 0.1 * v[i];
      }
    }
    assert.ok(maxAbsDiff(whole.images, x) < 1e-5);
  });
});

describe('driver: learned variables', () => {
  let dir: string;
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-learned-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const SPEC: LearnedVariableSpec = { name: 'scale', shape: [], init: Float32Array.of(0.5), lr: 0.2, momentum: 0.5, meta: 'learned_scale' };
  const SGD: ImageOptimizer = { kind: 'sgd', lr: 0.5, momentum: 0.9 };

  it('are differentiated with the images and updated by their own SGD with momentum (float64 reference), and logged', async () => {
    const ctx = ctxOf();
    const metrics: { key: string; value: number; step: number }[] = [];
    const track: Tracker = { param: () => undefined, metric: (key, value, step = 0) => metrics.push({ key, value, step }), tag: () => undefined, artifact: () => undefined };
    const result = await runDistillation(quadMethod(SGD, 1, SPEC), ctx, { end: 5, runSeed: 'learned', track, metricPrefix: 'distill.' });
    // L = mean((s x - t)^2): dL/dx = 2 s (s x - t) / n, dL/ds = 2 sum x (s x - t) / n, both from the same point.
    const x = Float64Array.from(X0);
    const vx = new Float64Array(TOTAL);
    let s = 0.5;
    let vs = 0;
    const values: number[] = [];
    for (let t = 0; t < 5; t++) {
      let gs = 0;
      const gx = new Float64Array(TOTAL);
      for (let i = 0; i < TOTAL; i++) {
        const r = s * x[i] - TARGET[i];
        gx[i] = (2 * s * r) / TOTAL;
        gs += (2 * x[i] * r) / TOTAL;
      }
      vs = 0.5 * vs + gs;
      s -= 0.2 * vs;
      for (let i = 0; i < TOTAL; i++) {
        vx[i] = 0.9 * vx[i] + gx[i];
        x[i] -= 0.5 * vx[i];
      }
      values.push(s);
    }
    assert.ok(Math.abs(s - 0.5) > 0.01, 'the learned value must move');
    const got = result.learned.scale;
    assert.deepEqual(got.shape, []);
    assert.ok(Math.abs(got.value[0] - s) < 1e-6, `scale ${got.value[0]} vs float64 ${s}`);
    assert.ok(Math.abs(got.momentum[0] - vs) < 1e-6);
    assert.ok(maxAbsDiff(result.images, x) < 1e-5);
    const logged = metrics.filter((m) => m.key === 'distill.scale');
    assert.equal(logged.length, 5);
    logged.forEach((m, i) => assert.ok(Math.abs(m.value - values[i]) < 1e-6, `logged at ${m.step}`));
    assert.ok(Math.abs(result.lastTerms.scale - s) < 1e-6);
  });

  it('are checkpointed and resumed to the same bytes, and a run continued from their written state equals a longer one', async () => {
    const ctx = ctxOf();
    const method = quadMethod(SGD, 1, SPEC);
    const whole = await runDistillation(method, ctx, { end: 6, runSeed: 'optim' });
    const resumed = await interruptedRun(method, ctx, 6, 2, join(dir, 'ck'));
    assert.ok(bytesEqual(resumed.images, whole.images));
    assert.ok(bytesEqual(resumed.learned.scale.value, whole.learned.scale.value));
    assert.ok(bytesEqual(resumed.learned.scale.momentum, whole.learned.scale.momentum));

    const first = await runDistillation(method, ctx, { end: 3, runSeed: 'optim' });
    const stateDir = join(dir, 'state');
    writeLearnedState(stateDir, first.learned);
    const learned = readLearnedState(stateDir);
    const second = await runDistillation(method, ctx, {
      end: 6,
      runSeed: 'optim',
      start: { images: first.images, labels: first.labels, momentum: first.momentum, learned, iteration: 3 },
    });
    assert.ok(bytesEqual(second.learned.scale.value, whole.learned.scale.value));
    assert.ok(bytesEqual(second.images, whole.images));
    // Without the learned state the continuation restarts the variable at its init: different bytes.
    const restarted = await runDistillation(method, ctx, { end: 6, runSeed: 'optim', start: { images: first.images, labels: first.labels, momentum: first.momentum, iteration: 3 } });
    assert.ok(!bytesEqual(restarted.learned.scale.value, whole.learned.scale.value));
  });

  it('a learned value that stops being finite stops the run with an error naming it; memory is released', async () => {
    const ctx = ctxOf();
    const before = tf.memory().numTensors;
    // 1e39 is beyond float32: the first update makes the value infinite while the loss is still finite.
    const method = quadMethod(SGD, 1, { ...SPEC, lr: 1e39 });
    await assert.rejects(runDistillation(method, ctx, { end: 3, runSeed: 'boom' }), /learned 'scale' became non-finite/);
    assert.equal(tf.memory().numTensors, before);
  });
});
