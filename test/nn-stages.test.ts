import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { writeDatasetArtifact } from '../src/data/artifact.js';
import { listSnapshots, loadModel } from '../src/nn/checkpoint.js';
import { fromNchw } from '../src/nn/data.js';
import { evaluate } from '../src/nn/train.js';
import type { ArtifactView, StageContext, StageKind } from '../src/stages/contract.js';
import { evalStage, type EvalParams, type EvalResult } from '../src/stages/eval.js';
import { pretrainStage, type PretrainMeta, type PretrainParams } from '../src/stages/pretrain.js';
import { writeNpy } from '../src/store/npy.js';
import type { TrackRecord } from '../src/tracking/records.js';
import { createRng } from '../src/util/rng.js';
import { setupBackend } from './nn-backend.js';

const root = mkdtempSync(join(tmpdir(), 'metadd-nn-stages-'));
let backend = 'cpu';

before(async () => {
  backend = await setupBackend();
});
after(() => rmSync(root, { recursive: true, force: true }));

const C = 1;
const H = 12;
const W = 12;
const K = 3;

/** Class k: a bright horizontal band in the k-th third of the image, plus noise. */
function bands(n: number, seed: string): { x: Float32Array; y: Int32Array } {
  const rng = createRng(seed);
  const x = new Float32Array(n * C * H * W);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) x[(i * H + r) * W + c] = (Math.floor(r / (H / K)) === y[i] ? 1.5 : -0.5) + 0.4 * rng.normal();
    }
  }
  return { x, y };
}

function makeDataset(): ArtifactView {
  const dir = join(root, 'dataset');
  mkdirSync(dir, { recursive: true });
  const train = bands(60, 'train');
  const test = bands(30, 'test');
  writeDatasetArtifact(dir, {
    trainX: train.x,
    trainY: train.y,
    testX: test.x,
    testY: test.y,
    meta: {
      name: 'npy',
      classes: K,
      class_names: ['top', 'middle', 'bottom'],
      channels: C,
      height: H,
      width: W,
      mean: [0],
      std: [1],
      train_count: 60,
      test_count: 30,
      digest: 'test',
    },
  });
  return { key: 'dataset-key', kind: 'dataset', dir, meta: {} };
}

function makeImageSet(withSoft: boolean): ArtifactView {
  const dir = join(root, withSoft ? 'images-soft' : 'images');
  const set = bands(9, 'distilled');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeNpy(join(dir, 'images.npy'), set.x, [9, C, H, W]);
  writeNpy(join(dir, 'labels.npy'), set.y, [9]);
  if (withSoft) {
    const soft = new Float32Array(9 * K);
    for (let i = 0; i < 9; i++) for (let k = 0; k < K; k++) soft[i * K + k] = k === set.y[i] ? 0.8 : 0.1;
    writeNpy(join(dir, 'soft_labels.npy'), soft, [9, K]);
  }
  return { key: withSoft ? 'set-soft-key' : 'set-key', kind: 'distill', dir, meta: {} };
}

interface Harness<P> {
  ctx: StageContext<P>;
  records: TrackRecord[];
  logs: string[];
  controller: AbortController;
}

function context<P>(kind: StageKind, params: P, inputs: Record<string, ArtifactView>, name: string, scratch: string): Harness<P> {
  const outDir = mkdtempSync(join(root, `${name}-out-`));
  const records: TrackRecord[] = [];
  const logs: string[] = [];
  const controller = new AbortController();
  const ctx: StageContext<P> = {
    key: `${name}-key`,
    kind,
    params,
    inputs,
    outDir,
    scratchDir: scratch,
    rng: createRng(`stage-${name.replace(/-\d+$/, '')}`),
    progress: { update: () => undefined },
    track: {
      param: (key, value) => records.push({ type: 'param', key, value: String(value) }),
      metric: (key, value, step = 0) => records.push({ type: 'metric', key, value, step, timestamp: 0 }),
      tag: (key, value) => records.push({ type: 'tag', key, value }),
      artifact: (path) => records.push({ type: 'artifact', path }),
    },
    backend,
    signal: controller.signal,
    log: (m) => logs.push(m),
  };
  return { ctx, records, logs, controller };
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}

describe('pretrain and eval stages', () => {
  const dataset = makeDataset();

  const pretrainParams: PretrainParams = {
    arch: { name: 'convnet', width: 8, depth: 2, norm: 'batch' },
    epochs: 3,
    lr: 0.05,
    momentum: 0.9,
    weight_decay: 5e-4,
    batch: 16,
    augment: 'dsa',
    decay_epoch: 2,
    train_limit: 15,
    snapshots: true,
    seed: 0,
  };

  it('pretrain: a run killed mid-training resumes to the same bytes as an uninterrupted one', async () => {
    const full = context('pretrain', pretrainParams, { dataset }, 'pretrain-1', mkdtempSync(join(root, 'scratch-a-')));
    await pretrainStage.run(full.ctx);

    const scratch = mkdtempSync(join(root, 'scratch-b-'));
    const killed = context('pretrain', pretrainParams, { dataset }, 'pretrain-2', scratch);
    // Abort once the third epoch has made progress: the checkpoint of epoch 2 is on disk by then, taken
    // right after the lr decay emptied the momentum buffers (the resume must restore that too).
    killed.ctx.progress = { update: (_d, _t, msg) => (msg?.startsWith('epoch 3/') ? killed.controller.abort() : undefined) };
    await assert.rejects(pretrainStage.run(killed.ctx), (err: Error) => err.name === 'AbortError');
    const resumed = context('pretrain', pretrainParams, { dataset }, 'pretrain-3', scratch);
    await pretrainStage.run(resumed.ctx);
    assert.ok(resumed.logs.some((l) => l.includes('resuming convnet at epoch 2')), resumed.logs.join('\n'));

    const files = filesUnder(full.ctx.outDir).sort();
    assert.deepEqual(filesUnder(resumed.ctx.outDir).sort(), files);
    assert.ok(files.includes(join('params', 'block0.conv.weight.npy')));
    assert.ok(files.includes(join('buffers', 'block1.norm.running_var.npy')));
    for (const f of files) {
      assert.ok(readFileSync(join(full.ctx.outDir, f)).equals(readFileSync(join(resumed.ctx.outDir, f))), `${f} differs`);
    }
    assert.deepEqual(listSnapshots(full.ctx.outDir), [0, 1, 2, 3]);

    const meta = JSON.parse(readFileSync(join(full.ctx.outDir, 'meta.json'), 'utf8')) as PretrainMeta;
    assert.equal(meta.epochs, 3);
    assert.equal(meta.train_count, 15 * K);
    assert.equal(meta.dsa_strategy, 'color_crop_cutout_flip_scale_rotate');
    assert.ok(meta.test_accuracy >= 0.9, `test accuracy ${meta.test_accuracy}`);
    const metrics = full.records.filter((r) => r.type === 'metric').map((r) => (r.type === 'metric' ? `${r.key}@${r.step}` : ''));
    assert.ok(['train_loss@1', 'train_loss@3', 'test_accuracy@3'].every((k) => metrics.includes(k)), metrics.join(' '));

    // The artifact loads back into a network with the reported accuracy.
    const loaded = loadModel(full.ctx.outDir);
    const d = JSON.parse(readFileSync(join(dataset.dir, 'meta.json'), 'utf8')) as { test_count: number };
    const test = bands(d.test_count, 'test');
    const acc = evaluate(loaded.model, loaded.params, loaded.bnState, fromNchw(test.x, test.y, [d.test_count, C, H, W])).accuracy;
    assert.equal(acc, meta.test_accuracy);
    tf.dispose([...Object.values(loaded.params), ...Object.values(loaded.bnState)]);
  });

  it('pretrain: a run killed inside an epoch resumes at the saved step, to the same bytes', async () => {
    const full = context('pretrain', pretrainParams, { dataset }, 'pretrain-1', mkdtempSync(join(root, 'scratch-c-')));
    await pretrainStage.run(full.ctx);
    const previous = process.env.METADD_CHECKPOINT_SECONDS;
    process.env.METADD_CHECKPOINT_SECONDS = '0'; // a checkpoint after every step
    try {
      const scratch = mkdtempSync(join(root, 'scratch-d-'));
      const killed = context('pretrain', pretrainParams, { dataset }, 'pretrain-2', scratch);
      const steps = Math.ceil((15 * K) / pretrainParams.batch);
      assert.ok(steps >= 3, 'the test needs epochs of three steps or more');
      // Aborted at the second step of epoch 2 (progress counts steps over all epochs); the checkpoint after
      // that step is written before the abort takes effect at the next step.
      killed.ctx.progress = { update: (done) => (done === steps + 2 ? killed.controller.abort() : undefined) };
      await assert.rejects(pretrainStage.run(killed.ctx), (err: Error) => err.name === 'AbortError');
      const resumed = context('pretrain', pretrainParams, { dataset }, 'pretrain-3', scratch);
      await pretrainStage.run(resumed.ctx);
      assert.ok(resumed.logs.some((l) => l.includes('resuming convnet at epoch 1 of 3, step 2 of epoch 2')), resumed.logs.join('\n'));
      const files = filesUnder(full.ctx.outDir).sort();
      assert.deepEqual(filesUnder(resumed.ctx.outDir).sort(), files);
      for (const f of files) {
        assert.ok(readFileSync(join(full.ctx.outDir, f)).equals(readFileSync(join(resumed.ctx.outDir, f))), `${f} differs`);
      }
    } finally {
      if (previous === undefined) delete process.env.METADD_CHECKPOINT_SECONDS;
      else process.env.METADD_CHECKPOINT_SECONDS = previous;
    }
  });

  const evalParams: EvalParams = {
    arch: { name: 'convnet', width: 8, depth: 2 },
    models: 2,
    epochs: 4,
    lr: 0.01,
    momentum: 0.9,
    weight_decay: 5e-4,
    batch: 256,
    augment: 'dsa',
    report_epoch: 'final',
    test_every: 2,
    seed: 0,
  };

  it('eval: trains fresh models on an image set and writes a valid result.json', async () => {
    const images = makeImageSet(false);
    const h = context('eval', evalParams, { dataset, images }, 'eval-1', mkdtempSync(join(root, 'scratch-e-')));
    await evalStage.run(h.ctx);
    const r = JSON.parse(readFileSync(join(h.ctx.outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.deepEqual(r.arch, { name: 'convnet', width: 8, depth: 2, norm: 'instance', act: 'relu', pool: 'avg', head: 'flatten' });
    assert.equal(r.set, 'set-key');
    assert.equal(r.n, 2);
    assert.equal(r.accuracies.length, 2);
    assert.ok(r.accuracies.every((a) => a >= 0 && a <= 1));
    const mean = (r.accuracies[0] + r.accuracies[1]) / 2;
    assert.ok(Math.abs(r.mean - mean) < 1e-12);
    assert.ok(Math.abs(r.std - Math.abs(r.accuracies[0] - r.accuracies[1]) / 2) < 1e-12);
    assert.equal(r.report_epoch, 'final');
    assert.deepEqual(r.curves.test_epochs, [[2, 4], [2, 4]]);
    assert.equal(r.curves.train_loss[0].length, 4);
    assert.deepEqual(r.accuracies, r.curves.test_accuracy.map((c) => c[c.length - 1]));
    assert.equal(r.soft_labels, false);
    // Two models with different seeds should not train identically.
    assert.notDeepEqual(r.curves.train_loss[0], r.curves.train_loss[1]);
    const keys = new Set(h.records.map((x) => (x.type === 'metric' ? x.key : '')));
    assert.ok(keys.has('accuracy') && keys.has('accuracy_mean') && keys.has('model_1/train_loss'));

    // Killed while training the second model, then resumed: the first model is not retrained and the
    // result is byte-identical.
    const scratch = mkdtempSync(join(root, 'scratch-e2-'));
    const killed = context('eval', evalParams, { dataset, images }, 'eval-2', scratch);
    killed.ctx.progress = { update: (_d, _t, msg) => (msg?.startsWith('model 2/2 epoch 2') ? killed.controller.abort() : undefined) };
    await assert.rejects(evalStage.run(killed.ctx), (err: Error) => err.name === 'AbortError');
    const resumed = context('eval', evalParams, { dataset, images }, 'eval-3', scratch);
    const started: string[] = [];
    resumed.ctx.progress = { update: (_d, _t, msg) => void started.push(msg ?? '') };
    await evalStage.run(resumed.ctx);
    assert.ok(started.every((m) => !m.startsWith('model 1/')), 'the finished model was trained again');
    assert.ok(readFileSync(join(resumed.ctx.outDir, 'result.json')).equals(readFileSync(join(h.ctx.outDir, 'result.json'))));
  });

  it("eval: 'best' reads the test set every epoch and reports the maximum; soft labels are used", async () => {
    const images = makeImageSet(true);
    const params: EvalParams = { ...evalParams, models: 1, epochs: 3, report_epoch: 'best', augment: 'none', temperature: 2 };
    const h = context('eval', params, { dataset, images }, 'eval-best', mkdtempSync(join(root, 'scratch-f-')));
    await evalStage.run(h.ctx);
    const r = JSON.parse(readFileSync(join(h.ctx.outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.deepEqual(r.curves.test_epochs, [[1, 2, 3]]);
    assert.equal(r.accuracies[0], Math.max(...r.curves.test_accuracy[0]));
    assert.equal(r.soft_labels, true);
    assert.equal(r.dsa_strategy, null);
  });

  it("eval: lr_from_set trains with the set's learned lr (MTT) and refuses a set without one", async () => {
    const images = makeImageSet(false);
    const params: EvalParams = { ...evalParams, models: 1, epochs: 2, augment: 'none', test_every: 0, lr_from_set: true };
    const learned = { ...images, meta: { learned_lr: 0.037 } };
    const h = context('eval', params, { dataset, images: learned }, 'eval-lr', mkdtempSync(join(root, 'scratch-lr-')));
    await evalStage.run(h.ctx);
    const r = JSON.parse(readFileSync(join(h.ctx.outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.equal(r.lr, 0.037);
    const plain = context('eval', { ...params, lr_from_set: false }, { dataset, images: learned }, 'eval-lr2', mkdtempSync(join(root, 'scratch-lr2-')));
    await evalStage.run(plain.ctx);
    const r2 = JSON.parse(readFileSync(join(plain.ctx.outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.equal(r2.lr, 0.01);
    assert.notDeepEqual(r.curves.train_loss, r2.curves.train_loss, 'a different lr trains differently');
    const none = context('eval', params, { dataset, images }, 'eval-lr3', mkdtempSync(join(root, 'scratch-lr3-')));
    await assert.rejects(evalStage.run(none.ctx), /lr_from_set needs a positive learned_lr in .*meta\.json \(found undefined\); only MTT sets learn one/);
  });

  it('eval: rejects an image set whose images do not match the dataset', async () => {
    const dir = join(root, 'bad-set');
    mkdirSync(dir, { recursive: true });
    writeNpy(join(dir, 'images.npy'), new Float32Array(2 * 3 * H * W), [2, 3, H, W]);
    writeNpy(join(dir, 'labels.npy'), new Int32Array(2), [2]);
    const h = context('eval', evalParams, { dataset, images: { key: 'bad', kind: 'distill', dir, meta: {} } }, 'eval-bad', mkdtempSync(join(root, 'scratch-g-')));
    await assert.rejects(evalStage.run(h.ctx), /3x12x12, the dataset's are 1x12x12/);
  });
});
