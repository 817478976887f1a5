import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { normalizeArch } from '../src/dag/arch.js';
import { baseGradientNorm, blockwiseLoss, iterationRng, runDistillation, type DriverOptions } from '../src/distill/driver.js';
import { createGradientMatching, type GradMatchConfig } from '../src/distill/gradmatch.js';
import { nchwToTensor } from '../src/distill/layout.js';
import { matchDistance } from '../src/distill/match.js';
import type { DistillMethod, MethodContext } from '../src/distill/method.js';
import { crossEntropy } from '../src/nn/losses.js';
import { distillStage } from '../src/stages/distill.js';
import type { Tracker } from '../src/tracking/records.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { bytesEqual, finiteDifference, methodContext, stageContext, tinyData, useCpu, useWasm, viewOf, writeTinyDataset } from './distill-helpers.js';

/** The "ours" distance in float64, straight from its definition (output unit = last axis). */
function oursReference(gs: { data: number[]; shape: number[] }[], gr: { data: number[]; shape: number[] }[]): number {
  let total = 0;
  gs.forEach((s, t) => {
    if (s.shape.length < 2) return;
    const out = s.shape[s.shape.length - 1];
    const rows = s.data.length / out;
    for (let j = 0; j < out; j++) {
      let dot = 0;
      let ns = 0;
      let nr = 0;
      for (let i = 0; i < rows; i++) {
        const a = s.data[i * out + j];
        const b = gr[t].data[i * out + j];
        dot += a * b;
        ns += a * a;
        nr += b * b;
      }
      total += 1 - dot / (Math.sqrt(ns) * Math.sqrt(nr) + 1e-6);
    }
  });
  return total;
}

function gmConfig(over: Partial<GradMatchConfig> = {}): GradMatchConfig {
  return {
    variant: 'dc',
    lr: 0.1,
    momentum: 0.5,
    batchReal: 16,
    init: 'noise',
    arch: { name: 'convnet', width: 4, depth: 2 },
    outerLoop: 2,
    innerLoop: 1,
    lrNet: 0.01,
    momentumNet: 0.5,
    batchTrain: 256,
    dataset: 'tiny',
    ...over,
  };
}

/** The method's loss for `images` on a fixed fresh network and a fixed real draw. */
function lossAt(method: DistillMethod<unknown, unknown>, ctx: MethodContext, images: Float32Array, seed: string): number {
  const { real, ipc } = ctx;
  const info = { iteration: 0, step: 0, globalStep: 0 };
  const state = method.beginIteration(ctx, 0, iterationRng(seed, 0));
  try {
    return tf.tidy(() => {
      const prepared = method.prepare(ctx, state, info, createRng(`${seed}-step`));
      const syn = nchwToTensor(images, real.classes * ipc, real.channels, real.height, real.width);
      return method.loss(ctx, state, prepared, syn, new Int32Array(0), info).dataSync()[0];
    });
  } finally {
    method.endIteration(state);
  }
}

describe('gradient matching (DC / DSA)', () => {
  let dir: string;
  before(async () => {
    await useCpu();
    dir = mkdtempSync(join(tmpdir(), 'metadd-gm-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the "ours" distance equals a float64 evaluation of its definition; 1-D tensors are ignored', () => {
    const rng = createRng('ours');
    const shapes = [[3, 3, 2, 4], [5, 3], [4], [2, 2, 3]];
    const mk = () => shapes.map((shape) => ({ shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()) }));
    const s = mk();
    const r = mk();
    const got = tf.tidy(() => matchDistance(s.map((g) => tf.tensor(g.data, g.shape)), r.map((g) => tf.tensor(g.data, g.shape))).dataSync()[0]);
    const expected = oursReference(s, r);
    assert.ok(Math.abs(got - expected) < 1e-4, `${got} vs ${expected}`);
    // Changing only the 1-D tensor changes nothing.
    r[2].data = r[2].data.map((v) => -3 * v);
    const again = tf.tidy(() => matchDistance(s.map((g) => tf.tensor(g.data, g.shape)), r.map((g) => tf.tensor(g.data, g.shape))).dataSync()[0]);
    assert.equal(again, got);
  });

  it('an all-zero synthetic gradient column gives a finite gradient (a filter seeing only dead ReLUs)', () => {
    const g = tf.grad((x: tf.Tensor) => matchDistance([x], [tf.tensor2d([[1, 2], [3, 4]])]))(tf.tensor2d([[0, 1], [0, 2]]));
    for (const v of g.dataSync()) assert.ok(Number.isFinite(v));
    g.dispose();
  });

  it('second-order: d(match loss)/d(pixels) agrees with finite differences through a tanh ConvNet', () => {
    // tanh keeps the loss smooth (around ReLU kinks finite differences are noise); avg pooling and
    // instance norm exercise the engine's registrations (AvgPoolGrad, Conv2DBackpropFilter, saved outputs).
    const model = buildModel({ name: 'convnet', width: 3, depth: 2, act: 'tanh', norm: 'instance', pool: 'avg' }, { channels: 1, height: 6, width: 6, classes: 2 });
    const params = model.init(createRng('fd-net'));
    const names = model.paramSpecs.filter((s) => s.shape.length >= 2).map((s) => s.name);
    const labels = tf.tensor1d([0, 1], 'int32');
    const grads = (x: tf.Tensor4D): tf.Tensor[] =>
      tf.grads((...ps: tf.Tensor[]) => {
        const p = { ...params };
        names.forEach((n, i) => (p[n] = ps[i]));
        return crossEntropy(model.forward(p, x, { training: true }), labels);
      })(names.map((n) => params[n]));
    const rng = createRng('fd-data');
    const realX = tf.tensor4d(Float32Array.from({ length: 2 * 36 }, () => rng.normal()), [2, 6, 6, 1]);
    const gReal = grads(realX);
    const x0 = Float32Array.from({ length: 2 * 36 }, () => rng.normal());
    const lossOf = (x: tf.Tensor4D): tf.Scalar => matchDistance(grads(x), gReal);
    const analytic = tf.tidy(() => tf.grad((x: tf.Tensor) => lossOf(x as tf.Tensor4D))(tf.tensor4d(x0, [2, 6, 6, 1])).dataSync());
    const f = (x: Float32Array): number => tf.tidy(() => lossOf(tf.tensor4d(x, [2, 6, 6, 1])).dataSync()[0]);
    const scale = Math.max(...Array.from(analytic, Math.abs));
    assert.ok(scale > 1e-4, 'gradient must not vanish');
    for (const idx of [0, 7, 14, 21, 35, 40, 55, 71]) {
      const fd = finiteDifference(f, x0, idx, 1e-2);
      assert.ok(Math.abs(fd - analytic[idx]) < 2e-2 * scale + 1e-4, `pixel ${idx}: analytic ${analytic[idx]} vs finite difference ${fd}`);
    }
    tf.dispose([...gReal, realX, labels, ...Object.values(params)]);
  });

  for (const variant of ['dc', 'dsa'] as const) {
    it(`${variant}: a few iterations from noise lower the matching loss on a fixed network`, async () => {
      const real = tinyData({ classes: 2, perClass: 12 });
      const ctx = methodContext(real, 2);
      // A larger image lr than the reference's 0.1 makes 8 iterations move the loss well past noise.
      const method = createGradientMatching(gmConfig({ variant, lr: 1 }));
      const start = await runDistillation(method, ctx, { end: 0, runSeed: `${variant}-lower` });
      const result = await runDistillation(method, ctx, { end: 8, runSeed: `${variant}-lower` });
      for (const probe of ['p1', 'p2']) {
        const b = lossAt(method, ctx, start.images, probe);
        const a = lossAt(method, ctx, result.images, probe);
        assert.ok(a < 0.8 * b, `${probe}: ${b} -> ${a}`);
      }
    });
  }

  for (const variant of ['dc', 'dsa'] as const) {
    it(`${variant}: the per-class tapes give the whole-set tape's value and gradient, and the same run`, async () => {
      const real = tinyData({ classes: 3, perClass: 10 });
      const ctx = methodContext(real, 2);
      const method = createGradientMatching(gmConfig({ variant, batchReal: 8 }));
      const blocks = method.blocks;
      assert.ok(blocks);
      assert.deepEqual(blocks.rows(ctx).map(({ start, end }) => ({ start, end })), [{ start: 0, end: 2 }, { start: 2, end: 4 }, { start: 4, end: 6 }]);
      const info = { iteration: 0, step: 0, globalStep: 0 };
      const state = method.beginIteration(ctx, 0, iterationRng('blocks', 0));
      try {
        tf.tidy(() => {
          const prepared = method.prepare(ctx, state, info, createRng('blocks-step'));
          const rng = createRng('blocks-x');
          const syn = tf.tensor4d(Float32Array.from({ length: 6 * real.height * real.width * real.channels }, () => rng.normal()), [6, real.height, real.width, real.channels]);
          const whole = tf.valueAndGrad((x: tf.Tensor) => method.loss(ctx, state, prepared, x as tf.Tensor4D, new Int32Array(0), info))(syn);
          const split = blockwiseLoss(blocks, ctx, state, prepared, syn, info);
          assert.equal(split.value.dataSync()[0], whole.value.dataSync()[0]);
          assert.deepEqual(split.grad.shape, whole.grad.shape);
          assert.ok(bytesEqual(split.grad.dataSync() as Float32Array, whole.grad.dataSync() as Float32Array), 'the same float32 gradient');
          assert.ok(Math.max(...Array.from(whole.grad.dataSync(), Math.abs)) > 0, 'a gradient that is not all zero');
        });
      } finally {
        method.endIteration(state);
      }
      const viaBlocks = await runDistillation(method, ctx, { end: 2, runSeed: 'blocks-run' });
      const oneTape = await runDistillation({ ...method, blocks: undefined }, ctx, { end: 2, runSeed: 'blocks-run' });
      assert.ok(bytesEqual(viaBlocks.images, oneTape.images));
    });
  }

  it('dc: with an active extra loss (how MetaDD plugs in), per-class tapes and one tape give the same run', async () => {
    const real = tinyData({ classes: 3, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createGradientMatching(gmConfig({ batchReal: 8 }));
    // A per-image mean, so that it may be chunked: 0.05 * mean(x^2) plus a logged term.
    const extraLoss = {
      active: true,
      chunk: 0,
      compute: (syn: tf.Tensor4D) => {
        const pull = tf.mean(tf.square(syn)) as tf.Scalar;
        return { total: tf.mul(pull, 0.05) as tf.Scalar, terms: { pull } };
      },
    };
    const viaBlocks = await runDistillation(method, ctx, { end: 2, runSeed: 'blocks-extra', extraLoss });
    const oneTape = await runDistillation({ ...method, blocks: undefined }, ctx, { end: 2, runSeed: 'blocks-extra', extraLoss });
    const plain = await runDistillation(method, ctx, { end: 2, runSeed: 'blocks-extra' });
    let diff = 0;
    let moved = 0;
    for (let i = 0; i < oneTape.images.length; i++) {
      diff = Math.max(diff, Math.abs(viaBlocks.images[i] - oneTape.images[i]));
      moved = Math.max(moved, Math.abs(viaBlocks.images[i] - plain.images[i]));
    }
    assert.ok(diff < 1e-5, `per-class tapes vs one tape: max |difference| ${diff}`);
    assert.ok(moved > 1e-4, `the extra loss must change the run (${moved})`);
    // The logged terms agree too (the extra term on its own tape, or in the base's).
    for (const k of ['loss', 'pull']) assert.ok(Math.abs(viaBlocks.lastTerms[k] - oneTape.lastTerms[k]) < 1e-5, `${k}: ${viaBlocks.lastTerms[k]} vs ${oneTape.lastTerms[k]}`);
  });

  it('dc: baseGradientNorm (MetaDD relative weights) is the same through per-class tapes as through one tape', async () => {
    const real = tinyData({ classes: 3, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createGradientMatching(gmConfig({ batchReal: 8 }));
    const start = await runDistillation(method, ctx, { end: 0, runSeed: 'norm' });
    const at = { images: start.images, labels: start.labels, iteration: 0, runSeed: 'norm' };
    const viaBlocks = baseGradientNorm(method, ctx, at);
    const oneTape = baseGradientNorm({ ...method, blocks: undefined }, ctx, at);
    assert.ok(viaBlocks > 0);
    assert.equal(viaBlocks, oneTape);
  });

  it('loss blocks: gaps or overlaps and methods with learned variables are refused', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 2);
    const method = createGradientMatching(gmConfig());
    const blocks = method.blocks;
    assert.ok(blocks);
    const gap = { ...method, blocks: { ...blocks, rows: () => [{ start: 0, end: 1 }, { start: 2, end: 4 }] } };
    await assert.rejects(runDistillation(gap, ctx, { end: 1, runSeed: 'gap' }), /consecutive and non-empty: \[2, 4\) after row 1/);
    const short = { ...method, blocks: { ...blocks, rows: () => [{ start: 0, end: 2 }] } };
    await assert.rejects(runDistillation(short, ctx, { end: 1, runSeed: 'short' }), /cover 2 rows of a set of 4/);
    const learned = { ...method, learned: [{ name: 'lr', shape: [1], init: Float32Array.of(0.01), lr: 1e-3, momentum: 0.5 }] };
    await assert.rejects(runDistillation(learned, ctx, { end: 1, runSeed: 'learned' }), /learned variables cannot declare loss blocks/);
  });

  it('dsa: same seed, same bytes; resume from a checkpoint equals an uninterrupted run', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = createGradientMatching(gmConfig({ variant: 'dsa', batchReal: 8 }));
    const whole = await runDistillation(method, ctx, { end: 4, runSeed: 'gm' });
    const again = await runDistillation(method, ctx, { end: 4, runSeed: 'gm' });
    assert.ok(bytesEqual(whole.images, again.images));
    const checkpoint = { dir: join(dir, 'ck'), every: 1, fingerprint: 'gm' };
    const controller = new AbortController();
    await assert.rejects(
      runDistillation(method, ctx, {
        end: 4,
        runSeed: 'gm',
        checkpoint,
        signal: controller.signal,
        progress: { update: (done) => done === 2 && controller.abort(new Error('halt')) },
      }),
      /halt/,
    );
    const resumed = await runDistillation(method, ctx, { end: 4, runSeed: 'gm', checkpoint });
    assert.equal(resumed.resumedFrom, 2);
    assert.ok(bytesEqual(resumed.images, whole.images));
  });

  /** Curve points as the driver logs them, in order. */
  const curveOf = (points: string[]): Tracker => ({
    param: () => undefined,
    tag: () => undefined,
    artifact: () => undefined,
    metric: (key, value, step) => void points.push(`${key}@${step}=${value}`),
  });

  /** Runs `method` and interrupts it (its signal) when the step named by `at` reports progress. */
  const interruptAfter = async (at: string, method: DistillMethod<unknown, unknown>, ctx: MethodContext, options: DriverOptions): Promise<void> => {
    const controller = new AbortController();
    const update = (_done: number, _total: number, message?: string): void => {
      if (message?.startsWith(at)) controller.abort(new Error('halt'));
    };
    await assert.rejects(runDistillation(method, ctx, { ...options, signal: controller.signal, stepProgressMs: 0, progress: { update } }), /halt/);
  };

  for (const [name, over] of [
    ['dsa', { variant: 'dsa' }],
    ['dc with batch norm', { variant: 'dc', arch: { name: 'convnet', width: 4, depth: 2, norm: 'batch' } }],
  ] as [string, Partial<GradMatchConfig>][]) {
    it(`${name}: a run interrupted inside an iteration resumes at its last image update, to the bytes of an uninterrupted run`, async () => {
      const real = tinyData({ classes: 2, perClass: 10 });
      const ctx = methodContext(real, 2);
      const method = createGradientMatching(gmConfig({ outerLoop: 3, batchReal: 8, ...over }));
      assert.ok(method.iterationState, 'DC/DSA declare their iteration state');
      const wholeCurve: string[] = [];
      const whole = await runDistillation(method, ctx, { end: 3, runSeed: 'mid', track: curveOf(wholeCurve) });
      const checkpoint = { dir: join(dir, `mid-${name}`), seconds: 1e9, fingerprint: 'mid' };
      await interruptAfter('iteration 2, step 2/3', method, ctx, { end: 3, runSeed: 'mid', checkpoint });
      // It stopped after the second update of the second iteration, not at the end of that iteration.
      assert.ok(existsSync(join(checkpoint.dir, 'ckpt-1-2', 'method')), 'a checkpoint inside iteration 2 with the network state');
      const resumedCurve: string[] = [];
      const resumed = await runDistillation(method, ctx, { end: 3, runSeed: 'mid', checkpoint, track: curveOf(resumedCurve) });
      assert.equal(resumed.resumedFrom, 1);
      assert.equal(resumed.resumedStep, 2);
      assert.ok(bytesEqual(resumed.images, whole.images));
      assert.ok(bytesEqual(resumed.optimizerState.buffers.momentum, whole.optimizerState.buffers.momentum));
      // The resumed iteration's logged mean includes the updates done before the interruption.
      assert.deepEqual(resumedCurve, wholeCurve);
    });
  }

  it('with a zero interval checkpoints after every image update, and resumes from the last one', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = createGradientMatching(gmConfig({ outerLoop: 3, batchReal: 8 }));
    const whole = await runDistillation(method, ctx, { end: 2, runSeed: 'zero' });
    const checkpoint = { dir: join(dir, 'zero'), seconds: 0, fingerprint: 'zero' };
    const first = await runDistillation(method, ctx, { end: 2, runSeed: 'zero', checkpoint });
    assert.ok(bytesEqual(first.images, whole.images), 'checkpoints do not change the run');
    // The last checkpoint is inside the last iteration, before its last update.
    assert.deepEqual(readdirSync(checkpoint.dir).filter((e) => e.startsWith('ckpt-')), ['ckpt-1-2']);
    const again = await runDistillation(method, ctx, { end: 2, runSeed: 'zero', checkpoint });
    assert.deepEqual([again.resumedFrom, again.resumedStep], [1, 2]);
    assert.ok(bytesEqual(again.images, whole.images));
  });

  it('without an iteration state, an interrupted iteration is finished and checkpointed at its end', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = { ...createGradientMatching(gmConfig({ outerLoop: 3, batchReal: 8 })), iterationState: undefined };
    const whole = await runDistillation(method, ctx, { end: 3, runSeed: 'plain' });
    const checkpoint = { dir: join(dir, 'plain'), seconds: 0, fingerprint: 'plain' };
    await interruptAfter('iteration 2, step 1/3', method, ctx, { end: 3, runSeed: 'plain', checkpoint });
    assert.deepEqual(readdirSync(checkpoint.dir).filter((e) => e.startsWith('ckpt-')), ['ckpt-2']);
    const resumed = await runDistillation(method, ctx, { end: 3, runSeed: 'plain', checkpoint });
    assert.deepEqual([resumed.resumedFrom, resumed.resumedStep], [2, 0]);
    assert.ok(bytesEqual(resumed.images, whole.images));
  });

  it('the distill stage checkpoints inside an iteration (METADD_CHECKPOINT_SECONDS) and resumes there, to the same bytes', async () => {
    const datasetDir = mkdtempSync(join(dir, 'stage-data-'));
    writeTinyDataset(datasetDir, { classes: 2, perClass: 10, size: 8 });
    const params = {
      method: 'dc',
      ipc: 1,
      seed: 0,
      iterations: 2,
      lr_img: 0.1,
      momentum: 0.5,
      batch_real: 8,
      init: 'noise',
      arch: normalizeArch({ name: 'convnet', width: 4, depth: 2 }),
      outer_loop: 3,
      inner_loop: 1,
      lr_net: 0.01,
      momentum_net: 0.5,
      batch_train: 256,
    };
    const inputs = { dataset: viewOf('dataset', datasetDir) };
    const full = stageContext('distill', params, inputs, dir, 'dc-stage');
    await distillStage.run(full.ctx);
    const previous = process.env.METADD_CHECKPOINT_SECONDS;
    process.env.METADD_CHECKPOINT_SECONDS = '0';
    try {
      // A zero interval checkpoints after every update, so the run leaves its last one inside its last
      // iteration, as a run killed before its last update would.
      const checkpointed = stageContext('distill', params, inputs, dir, 'dc-stage');
      await distillStage.run(checkpointed.ctx);
      assert.deepEqual(readdirSync(join(checkpointed.ctx.scratchDir, 'driver')).filter((e) => e.startsWith('ckpt-')), ['ckpt-1-2']);
      const logs: string[] = [];
      const resumed = stageContext('distill', params, inputs, dir, 'dc-stage');
      resumed.ctx.scratchDir = checkpointed.ctx.scratchDir;
      resumed.ctx.log = (line) => void logs.push(line);
      await distillStage.run(resumed.ctx);
      assert.ok(logs.some((l) => l.includes('resuming dc from the checkpoint at iteration 2, after image update 2/3')), logs.join('\n'));
      for (const f of ['images.npy', 'labels.npy', 'state/momentum.npy']) {
        assert.ok(readFileSync(join(full.outDir, f)).equals(readFileSync(join(resumed.outDir, f))), `${f} differs`);
      }
    } finally {
      if (previous === undefined) delete process.env.METADD_CHECKPOINT_SECONDS;
      else process.env.METADD_CHECKPOINT_SECONDS = previous;
    }
  });

  it('reports its steps within an iteration when asked to (stepProgressMs), its iterations always', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = createGradientMatching(gmConfig({ outerLoop: 3, batchReal: 8 }));
    const calls: [number, number, string][] = [];
    const progress = { update: (done: number, total: number, message?: string) => void calls.push([done, total, message ?? '']) };
    await runDistillation(method, ctx, { end: 2, runSeed: 'steps', progress, stepProgressMs: 0 });
    // The message without its loss value; the last step of an iteration is reported as the iteration's end.
    assert.deepEqual(
      calls.map(([d, t, m]) => `${d}/${t}: ${m.replace(/ ?loss \S+$/, '')}`),
      ['0/2: iteration 1, step 1/3', '0/2: iteration 1, step 2/3', '1/2: ', '1/2: iteration 2, step 1/3', '1/2: iteration 2, step 2/3', '2/2: '],
    );
    assert.ok(calls.every(([, , m]) => /loss \S+$/.test(m)), 'every update carries a loss');
    calls.length = 0;
    await runDistillation(method, ctx, { end: 2, runSeed: 'steps', progress, stepProgressMs: 1e9 });
    assert.deepEqual(calls.map(([d]) => d), [1, 2], 'within the interval, an iteration reports only its end');
  });

  it('holds no tensors across iterations (network training between image updates included)', async () => {
    const real = tinyData({ classes: 2, perClass: 10 });
    const ctx = methodContext(real, 1);
    const method = createGradientMatching(gmConfig({ variant: 'dsa', batchReal: 8 }));
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    await runDistillation(method, ctx, { end: 4, runSeed: 'mem', progress: { update: () => counts.push(tf.memory().numTensors) } });
    assert.equal(new Set(counts).size, 1, counts.join(', '));
    assert.equal(tf.memory().numTensors, before);
  });
});

describe('gradient matching on the WASM backend (the one metadd runs on here)', () => {
  before(useWasm);

  for (const variant of ['dc', 'dsa'] as const) {
    it(`${variant}: per-class tapes give the one-tape run to the bit there too`, async () => {
      assert.equal(tf.getBackend(), 'wasm');
      const real = tinyData({ classes: 3, perClass: 10 });
      const ctx = methodContext(real, 2);
      const method = createGradientMatching(gmConfig({ variant, batchReal: 8 }));
      const viaBlocks = await runDistillation(method, ctx, { end: 2, runSeed: 'blocks-wasm' });
      const oneTape = await runDistillation({ ...method, blocks: undefined }, ctx, { end: 2, runSeed: 'blocks-wasm' });
      assert.ok(bytesEqual(viaBlocks.images, oneTape.images));
    });
  }
});
