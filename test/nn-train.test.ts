import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadTrainState, saveTrainState } from '../src/nn/checkpoint.js';
import { checkpointIntervalMs } from '../src/util/checkpoint-interval.js';
import { fromNchw, limitPerClass, nchwToNhwc, nhwcToNchw, type LabeledImages } from '../src/nn/data.js';
import { crossEntropy, softCrossEntropy, temperedTargets } from '../src/nn/losses.js';
import { sgdStep } from '../src/nn/sgd.js';
import { disposeTrainState, evaluate, initTrainState, lrAt, train, type TrainConfig } from '../src/nn/train.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { maxAbsDiff, setupBackend } from './nn-backend.js';

before(async () => {
  await setupBackend();
});

/**
 * A separable toy problem: class k has a bright k-th quadrant plus noise, so a small conv net (or MLP)
 * must reach near-perfect accuracy within a few epochs.
 */
function quadrants(n: number, seed: string, size = 8): LabeledImages {
  const rng = createRng(seed);
  const x = new Float32Array(n * size * size);
  const y = new Int32Array(n);
  const half = size / 2;
  for (let i = 0; i < n; i++) {
    const k = i % 4;
    y[i] = k;
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) {
        const inQuadrant = (r < half ? 0 : 2) + (c < half ? 0 : 1) === k;
        x[(i * size + r) * size + c] = (inQuadrant ? 1.5 : -0.5) + 0.5 * rng.normal();
      }
    }
  }
  return fromNchw(x, y, [n, 1, size, size]);
}

const BASE: TrainConfig = { epochs: 6, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batch: 16 };

describe('training', () => {
  it('SGD step matches PyTorch semantics by hand (momentum, weight decay, two steps)', () => {
    const p0 = { w: tf.tensor1d([1, -2]) };
    const g1 = { w: tf.tensor1d([0.5, 0.25]) };
    const g2 = { w: tf.tensor1d([-1, 2]) };
    const cfg = { lr: 0.1, momentum: 0.9, weightDecay: 0.01 };
    const s1 = sgdStep(p0, g1, {}, cfg);
    // step 1: d = g + wd p = [0.51, 0.23]; buf = d; p = p - lr buf = [0.949, -2.023]
    assert.ok(maxAbsDiff(s1.buffers.w, [0.51, 0.23]) < 1e-6);
    assert.ok(maxAbsDiff(s1.params.w, [0.949, -2.023]) < 1e-6);
    const s2 = sgdStep(s1.params, g2, s1.buffers, cfg);
    // step 2: d = [-1 + 0.00949, 2 - 0.02023] = [-0.99051, 1.97977]; buf = 0.9 [0.51, 0.23] + d = [-0.53151, 2.18677]
    // p = [0.949 + 0.053151, -2.023 - 0.218677] = [1.002151, -2.241677]
    assert.ok(maxAbsDiff(s2.buffers.w, [-0.53151, 2.18677]) < 1e-5);
    assert.ok(maxAbsDiff(s2.params.w, [1.002151, -2.241677]) < 1e-5);
    const plain = sgdStep(p0, g1, {}, { lr: 0.1, momentum: 0, weightDecay: 0 });
    assert.deepEqual(Object.keys(plain.buffers), []);
    assert.ok(maxAbsDiff(plain.params.w, [0.95, -2.025]) < 1e-6);
    tf.dispose([p0.w, g1.w, g2.w, s1.params.w, s1.buffers.w, s2.params.w, s2.buffers.w, plain.params.w]);
  });

  it('cross-entropy and its soft / tempered variants match hand values', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([[2, 0, -1], [0.5, 0.5, 3]]);
      const labels = tf.tensor1d([0, 2], 'int32');
      const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
      const expected = (lse([2, 0, -1]) - 2 + lse([0.5, 0.5, 3]) - 3) / 2;
      assert.ok(Math.abs(crossEntropy(logits, labels).dataSync()[0] - expected) < 1e-5);
      const onehot = tf.oneHot(labels, 3) as tf.Tensor2D;
      assert.ok(Math.abs(softCrossEntropy(logits, onehot).dataSync()[0] - expected) < 1e-5);
      // Tempering softmax probabilities equals a softmax of the logits divided by T.
      const probs = tf.softmax(logits);
      assert.ok(maxAbsDiff(temperedTargets(probs, 4), tf.softmax(tf.div(logits, 4))) < 1e-5);
      // T^2 * CE(p_T, softmax(z / T)) by hand for one row.
      const z = [2, 0, -1];
      const pT = [1, 0, 0];
      const t = 2;
      const handT = t * t * (lse(z.map((v) => v / t)) - z[0] / t) * pT[0];
      assert.ok(Math.abs(softCrossEntropy(tf.tensor2d([z]), tf.tensor2d([pT]), t).dataSync()[0] - handT) < 1e-5);
      // The gradient w.r.t. the logits is softmax - onehot (divided by N).
      const g = tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, labels))(logits);
      assert.ok(maxAbsDiff(g, tf.div(tf.sub(tf.softmax(logits), onehot), 2)) < 1e-6);
    });
  });

  it('second order: d/dx of a gradient-matching loss through a ConvNet matches finite differences', () => {
    // DC's inner quantity: the parameter gradient of the CE on images x, compared with a fixed target G.
    // tanh keeps the function smooth so finite differences are meaningful (ReLU kinks make them noise).
    for (const norm of ['instance', 'batch'] as const) {
      const model = buildModel({ name: 'convnet', width: 4, depth: 2, act: 'tanh', norm }, { channels: 1, height: 8, width: 8, classes: 3 });
      const params = model.init(createRng(`second-order-${norm}`));
      const names = model.paramSpecs.map((s) => s.name);
      const labels = tf.tensor1d([0, 1, 2], 'int32');
      const targets = names.map((n, i) => tf.randomNormal(params[n].shape, 0, 0.1, 'float32', 100 + i));
      const matchLoss = (x: tf.Tensor4D): tf.Scalar => {
        const grads = tf.grads((...ps: tf.Tensor[]) => {
          const p: Record<string, tf.Tensor> = {};
          names.forEach((n, i) => (p[n] = ps[i]));
          return crossEntropy(model.forward(p, x, { training: true }), labels);
        })(names.map((n) => params[n]));
        return tf.addN(grads.map((g, i) => tf.sum(tf.square(tf.sub(g, targets[i]))))) as tf.Scalar;
      };
      const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 42) as tf.Tensor4D;
      const analytic = tf.grad((t: tf.Tensor) => matchLoss(t as tf.Tensor4D))(x).dataSync();
      const base = x.dataSync();
      const scale = Math.max(...Array.from(analytic, Math.abs));
      for (const i of [0, 9, 27, 70, 101, 150, 191]) {
        const eps = 1e-2;
        const at = (d: number) => {
          const v = Float32Array.from(base);
          v[i] += d;
          return tf.tidy(() => matchLoss(tf.tensor4d(v, x.shape)).dataSync()[0]);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        assert.ok(Math.abs(numeric - analytic[i]) < 2e-2 * scale, `${norm} coord ${i}: analytic ${analytic[i]} numeric ${numeric}`);
      }
      tf.dispose([x, labels, ...targets, ...Object.values(params)]);
    }
  });

  it('lr schedule: x0.1 after decayEpoch epochs, constant without one', () => {
    const cfg = { ...BASE, epochs: 10, decayEpoch: 6 };
    assert.deepEqual([1, 6, 7, 10].map((e) => lrAt(cfg, e)), [0.05, 0.05, 0.05 * 0.1, 0.05 * 0.1]);
    assert.equal(lrAt({ ...BASE, decayEpoch: null }, 100), 0.05);
  });

  it('NCHW <-> NHWC conversion round-trips and places channels last', () => {
    const x = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i);
    const nhwc = nchwToNhwc(x, 2, 3, 2, 2);
    // image 0, pixel (0, 1): channels 0, 1, 2 are at NCHW offsets 1, 5, 9.
    assert.deepEqual(Array.from(nhwc.subarray(3, 6)), [1, 5, 9]);
    assert.deepEqual(Array.from(nhwcToNchw(nhwc, 2, 2, 2, 3)), Array.from(x));
    const set = fromNchw(new Float32Array(6 * 4), Int32Array.from([0, 1, 0, 1, 0, 2]), [6, 1, 2, 2]);
    assert.deepEqual(Array.from(limitPerClass(set, 2).y), [0, 1, 0, 1, 2]);
  });

  it('a small ConvNet learns a separable toy set; tensors do not leak across epochs', async () => {
    const data = quadrants(96, 'train');
    const test = quadrants(64, 'test');
    const model = buildModel({ name: 'convnet', width: 8, depth: 2 }, { channels: 1, height: 8, width: 8, classes: 4 });
    const rng = createRng('learn');
    const counts: number[] = [];
    const state = await train(model, data, test, { ...BASE, testEvery: 2, decayEpoch: 4 }, rng.child('train'), initTrainState(model, rng.child('init')), {
      onEpoch: () => {
        counts.push(tf.memory().numTensors);
      },
    });
    assert.equal(state.epoch, 6);
    assert.deepEqual(state.curves.testEpochs, [2, 4, 6]);
    assert.equal(state.curves.trainLoss.length, 6);
    assert.ok(state.curves.trainLoss[5] < state.curves.trainLoss[0], `loss ${state.curves.trainLoss}`);
    assert.ok((state.curves.testAccuracy.at(-1) ?? 0) >= 0.95, `test accuracy ${state.curves.testAccuracy}`);
    assert.equal(evaluate(model, state.params, state.bnState, test).accuracy, state.curves.testAccuracy.at(-1));
    // Every epoch ends with the same live tensors, except the decay epoch (4), which drops the momentum
    // buffers (one per parameter) because the reference restarts its optimizer there.
    const nParams = model.paramSpecs.length;
    assert.deepEqual(counts, [0, 1, 2, 3, 4, 5].map((i) => (i === 3 ? counts[0] - nParams : counts[0])), `tensor counts ${counts}`);
    disposeTrainState(state);
  });

  it('an MLP trains on soft labels with DSA, deterministically under a seed', async () => {
    const data = quadrants(48, 'soft');
    const soft = new Float32Array(48 * 4);
    for (let i = 0; i < 48; i++) for (let k = 0; k < 4; k++) soft[i * 4 + k] = k === data.y[i] ? 0.85 : 0.05;
    const set = { ...data, soft };
    const model = buildModel({ name: 'mlp', width: 32 }, { channels: 1, height: 8, width: 8, classes: 4 });
    const cfg: TrainConfig = { ...BASE, epochs: 3, augment: 'dsa', dsa: { strategy: 'color_crop_cutout_flip_scale_rotate' }, temperature: 2 };
    const run = async () => {
      const rng = createRng('mlp');
      return train(model, set, data, cfg, rng.child('train'), initTrainState(model, rng.child('init')));
    };
    const a = await run();
    const b = await run();
    for (const s of model.paramSpecs) assert.equal(maxAbsDiff(a.params[s.name], b.params[s.name]), 0);
    assert.deepEqual(a.curves, b.curves);
    assert.ok(a.curves.trainLoss[2] < a.curves.trainLoss[0]);
    disposeTrainState(a);
    disposeTrainState(b);
  });

  it('micro-batches give the whole-batch step up to float order (hard and soft labels, DSA, KD); refused with batch norm', async () => {
    const data = quadrants(44, 'micro');
    const soft = new Float32Array(44 * 4);
    for (let i = 0; i < 44; i++) for (let k = 0; k < 4; k++) soft[i * 4 + k] = k === data.y[i] ? 0.7 : 0.1;
    const model = buildModel({ name: 'convnet', width: 6, depth: 2 }, { channels: 1, height: 8, width: 8, classes: 4 });
    const teacherModel = buildModel({ name: 'mlp', width: 8 }, { channels: 1, height: 8, width: 8, classes: 4 });
    const teacherParams = teacherModel.init(createRng('teacher'));
    const kd = { temperature: 4, logits: (x: tf.Tensor4D) => teacherModel.forward(teacherParams, x, { training: false }) };
    // Batch 16 over 44 images: steps of 16, 16 and 12, the last cut into micro-batches of 5, 5 and 2.
    const variants: [string, LabeledImages, TrainConfig][] = [
      ['hard labels', data, { ...BASE, epochs: 2, batch: 16 }],
      ['soft labels + DSA', { ...data, soft }, { ...BASE, epochs: 2, batch: 16, augment: 'dsa', dsa: { strategy: 'color_crop_cutout_flip_scale_rotate' }, temperature: 2 }],
      ['KD', data, { ...BASE, epochs: 2, batch: 16, kd }],
    ];
    for (const [label, set, cfg] of variants) {
      const run = async (microBatch?: number) => {
        const rng = createRng(`micro-${label}`);
        return train(model, set, data, { ...cfg, microBatch }, rng.child('train'), initTrainState(model, rng.child('init')));
      };
      const whole = await run();
      const chunked = await run(5);
      const again = await run(5);
      for (const spec of model.paramSpecs) {
        const scale = Math.max(1e-3, ...Array.from(whole.params[spec.name].dataSync(), Math.abs));
        assert.ok(maxAbsDiff(whole.params[spec.name], chunked.params[spec.name]) < 1e-5 * scale, `${label}: ${spec.name} differs by ${maxAbsDiff(whole.params[spec.name], chunked.params[spec.name])}`);
        assert.equal(maxAbsDiff(chunked.params[spec.name], again.params[spec.name]), 0, `${label}: deterministic`);
      }
      whole.curves.trainLoss.forEach((l, e) => assert.ok(Math.abs(l - chunked.curves.trainLoss[e]) < 1e-5 * Math.max(1, l), `${label}: epoch ${e + 1} loss`));
      assert.deepEqual(chunked.curves.trainAccuracy, whole.curves.trainAccuracy, label);
      [whole, chunked, again].forEach(disposeTrainState);
    }
    tf.dispose(Object.values(teacherParams));
    // The test-set passes go in batches of the micro-batch too (inference keeps a whole batch's activations).
    const testBatches: number[] = [];
    const spied = { ...model, forward: (p: Parameters<typeof model.forward>[0], x: tf.Tensor4D, o: Parameters<typeof model.forward>[2]) => {
      if (!o.training) testBatches.push(x.shape[0]);
      return model.forward(p, x, o);
    } };
    const rngT = createRng('micro-test-pass');
    disposeTrainState(await train(spied, data, data, { ...BASE, epochs: 1, batch: 16, microBatch: 5 }, rngT.child('train'), initTrainState(model, rngT.child('init'))));
    assert.deepEqual(testBatches, [5, 5, 5, 5, 5, 5, 5, 5, 4]);
    const bn = buildModel({ name: 'convnet', width: 4, depth: 1, norm: 'batch' }, { channels: 1, height: 8, width: 8, classes: 4 });
    const rng = createRng('micro-bn');
    const start = initTrainState(bn, rng.child('init'));
    await assert.rejects(train(bn, data, null, { ...BASE, batch: 16, microBatch: 4 }, rng.child('train'), start), /batch norm/);
    disposeTrainState(start);
  });

  it('batch-norm networks update their running statistics while training', async () => {
    const data = quadrants(32, 'bn');
    const model = buildModel({ name: 'convnet', width: 4, depth: 1, norm: 'batch' }, { channels: 1, height: 8, width: 8, classes: 4 });
    const rng = createRng('bn');
    const state = await train(model, data, data, { ...BASE, epochs: 2 }, rng.child('train'), initTrainState(model, rng.child('init')));
    const rv = state.bnState['block0.norm.running_var'].dataSync();
    assert.ok(rv.some((v) => Math.abs(v - 1) > 1e-3), 'running variance still at its initial value');
    disposeTrainState(state);
  });

  it('resuming from a mid-training state reproduces the uninterrupted run exactly', async () => {
    const data = quadrants(40, 'resume');
    const model = buildModel({ name: 'convnet', width: 4, depth: 2, norm: 'batch' }, { channels: 1, height: 8, width: 8, classes: 4 });
    const cfg: TrainConfig = { ...BASE, epochs: 4, batch: 12, decayEpoch: 2, augment: 'dsa' };
    const rng = createRng('resume');
    const full = await train(model, data, null, cfg, rng.child('train'), initTrainState(model, rng.child('init')));
    const first = await train(model, data, null, { ...cfg, epochs: 2 }, rng.child('train'), initTrainState(model, rng.child('init')));
    const rest = await train(model, data, null, cfg, rng.child('train'), first);
    for (const s of model.paramSpecs) assert.equal(maxAbsDiff(full.params[s.name], rest.params[s.name]), 0, s.name);
    for (const s of model.bnSpecs) assert.equal(maxAbsDiff(full.bnState[s.name], rest.bnState[s.name]), 0, s.name);
    assert.deepEqual(full.curves.trainLoss, rest.curves.trainLoss);
    disposeTrainState(full);
    disposeTrainState(rest);
  });

  it('resuming from a checkpoint taken inside an epoch reproduces the uninterrupted run exactly', async () => {
    const data = quadrants(40, 'resume-step');
    const model = buildModel({ name: 'convnet', width: 4, depth: 2, norm: 'batch' }, { channels: 1, height: 8, width: 8, classes: 4 });
    const cfg: TrainConfig = { ...BASE, epochs: 3, batch: 12, decayEpoch: 1, augment: 'dsa' };
    const rng = createRng('resume-step');
    const full = await train(model, data, null, cfg, rng.child('train'), initTrainState(model, rng.child('init')));
    const dir = mkdtempSync(join(tmpdir(), 'metadd-train-step-'));
    const controller = new AbortController();
    // Saved after step 2 of epoch 2 (inside the epoch, momentum buffers restarted by the decay), then killed.
    await assert.rejects(
      train(model, data, null, cfg, rng.child('train'), initTrainState(model, rng.child('init')), {
        signal: controller.signal,
        afterStep: (s) => {
          if (s.epoch === 1 && s.step === 2) {
            saveTrainState(dir, model, s);
            controller.abort();
          }
        },
      }),
      (err: Error) => err.name === 'AbortError',
    );
    const loaded = loadTrainState(dir, model);
    assert.ok(loaded);
    assert.equal(loaded.state.epoch, 1);
    assert.equal(loaded.state.step, 2);
    assert.ok(loaded.state.epochSums.loss > 0);
    const rest = await train(model, data, null, cfg, rng.child('train'), loaded.state);
    for (const s of model.paramSpecs) assert.equal(maxAbsDiff(full.params[s.name], rest.params[s.name]), 0, s.name);
    for (const s of model.bnSpecs) assert.equal(maxAbsDiff(full.bnState[s.name], rest.bnState[s.name]), 0, s.name);
    assert.deepEqual(rest.curves, full.curves);
    assert.equal(rest.step, 0);
    disposeTrainState(full);
    disposeTrainState(rest);
    rmSync(dir, { recursive: true, force: true });
  });

  it('METADD_CHECKPOINT_SECONDS sets the checkpoint interval, and a bad value is refused by name', () => {
    assert.equal(checkpointIntervalMs(30, {}), 30_000);
    assert.equal(checkpointIntervalMs(30, { METADD_CHECKPOINT_SECONDS: '0' }), 0);
    assert.equal(checkpointIntervalMs(30, { METADD_CHECKPOINT_SECONDS: '2.5' }), 2500);
    assert.throws(() => checkpointIntervalMs(30, { METADD_CHECKPOINT_SECONDS: 'soon' }), /METADD_CHECKPOINT_SECONDS.*'soon'/);
    assert.throws(() => checkpointIntervalMs(30, { METADD_CHECKPOINT_SECONDS: '-1' }), /METADD_CHECKPOINT_SECONDS/);
  });
});
