import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { normalizeArch } from '../src/dag/arch.js';
import { createDm } from '../src/distill/dm.js';
import { baseGradientNorm, runDistillation } from '../src/distill/driver.js';
import { nchwToTensor } from '../src/distill/layout.js';
import { auxOutputs, type AuxNet } from '../src/distill/metadd/aux.js';
import { metaddExtraLoss, termGradientNorms } from '../src/distill/metadd/extra.js';
import { architectureInvariantLoss, camVarianceLoss, metaFeatureLoss } from '../src/distill/metadd/losses.js';
import type { RealData } from '../src/distill/real-data.js';
import { buildModel } from '../src/nn/zoo.js';
import { distillStage, type DistillParams } from '../src/stages/distill.js';
import { metaddStage, type MetaddParams } from '../src/stages/metadd.js';
import { pretrainStage, type PretrainParams } from '../src/stages/pretrain.js';
import { readNpy } from '../src/store/npy.js';
import { createRng } from '../src/util/rng.js';
import { bytesEqual, methodContext, stageContext, tinyData, useCpu, viewOf, writeTinyDataset } from './distill-helpers.js';

const DM = { lr: 1, momentum: 0.5, batchReal: 8, init: 'real' as const, arch: { name: 'convnet' as const, width: 4, depth: 2 }, dsa: true, dataset: 'tiny' };

function randomAux(width: number, depth: number, seed: string, real: RealData): AuxNet {
  const model = buildModel({ name: 'convnet', width, depth, head: 'gap' }, { channels: real.channels, height: real.height, width: real.width, classes: real.classes });
  return { label: seed, model, params: model.init(createRng(seed)), bnState: {} };
}

function paramBytes(nets: AuxNet[]): Buffer {
  return Buffer.concat(nets.flatMap((n) => Object.keys(n.params).sort().map((k) => Buffer.from((n.params[k].dataSync() as Float32Array).buffer.slice(0)))));
}

/** L_ai and L_var of a set through the nets (no gradient). */
function terms(nets: AuxNet[], real: RealData, images: Float32Array, labels: Int32Array): { ai: number; var: number } {
  return tf.tidy(() => {
    const x = nchwToTensor(images, labels.length, real.channels, real.height, real.width);
    const y = tf.tensor1d(labels, 'int32');
    const outs = nets.map((n) => auxOutputs(n, x, y));
    return {
      ai: architectureInvariantLoss(outs.map((o) => o.logits), y).total.dataSync()[0],
      var: camVarianceLoss(outs.map((o) => o.cams)).dataSync()[0],
    };
  });
}

describe('MetaDD alignment (driver)', () => {
  before(useCpu);

  it('control arm (weights 0) reproduces the base trajectory byte for byte; aux nets stay bit-identical', async () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const ctx = methodContext(real, 2);
    const nets = [randomAux(4, 2, 'aux-a', real), randomAux(3, 1, 'aux-b', real)];
    const before = paramBytes(nets);
    const dm = createDm(DM);
    const long = await runDistillation(dm, ctx, { end: 6, runSeed: 'ctrl' });
    const base = await runDistillation(dm, ctx, { end: 3, runSeed: 'ctrl' });
    const logged: string[] = [];
    const control = await runDistillation(dm, ctx, {
      end: 6,
      runSeed: 'ctrl',
      start: { images: base.images, labels: base.labels, momentum: base.momentum, iteration: 3 },
      extraLoss: metaddExtraLoss(nets, { lambdaAi: 0, lambdaVar: 0 }),
      track: { param: () => undefined, tag: () => undefined, artifact: () => undefined, metric: (k) => logged.push(k) },
    });
    assert.ok(bytesEqual(control.images, long.images), 'control arm must equal the base method run longer');
    assert.ok(bytesEqual(control.momentum, long.momentum));
    // The terms are still measured and logged in the control arm.
    for (const k of ['loss', 'base', 'ai', 'ai_ce', 'ai_kl', 'var']) assert.ok(logged.includes(k), `metric ${k} logged`);
    assert.ok(paramBytes(nets).equals(before), 'auxiliary parameters changed');
    for (const n of nets) tf.dispose(Object.values(n.params));
  });

  it('metadd arm: the same iterations with the terms on lower L_ai and L_var below the control arm, nets unchanged', async () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const ctx = methodContext(real, 2);
    const nets = [randomAux(4, 2, 'aux-c', real), randomAux(5, 2, 'aux-d', real), randomAux(3, 1, 'aux-e', real)];
    const before = paramBytes(nets);
    const dm = createDm(DM);
    const base = await runDistillation(dm, ctx, { end: 2, runSeed: 'arm' });
    const start = { images: base.images, labels: base.labels, momentum: base.momentum, iteration: 2 };
    const run = (lambdaAi: number, lambdaVar: number) =>
      runDistillation(dm, ctx, { end: 14, runSeed: 'arm', start, extraLoss: metaddExtraLoss(nets, { lambdaAi, lambdaVar }) });
    const control = await run(0, 0);
    const metadd = await run(5, 50);
    assert.ok(!bytesEqual(control.images, metadd.images));
    const tc = terms(nets, real, control.images, control.labels);
    const tm = terms(nets, real, metadd.images, metadd.labels);
    assert.ok(tm.ai < tc.ai, `L_ai: control ${tc.ai}, metadd ${tm.ai}`);
    assert.ok(tm.var < tc.var, `L_var: control ${tc.var}, metadd ${tm.var}`);
    assert.ok(paramBytes(nets).equals(before));
    for (const n of nets) tf.dispose(Object.values(n.params));
  });
  it('chunked terms (one tape per chunk of images) give the whole-set update, with bounded tensors', async () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const ctx = methodContext(real, 3);
    const nets = [randomAux(4, 2, 'aux-f', real), randomAux(3, 1, 'aux-g', real)];
    const dm = createDm(DM);
    const weights = { lambdaAi: 2, lambdaVar: 20 };
    const whole = await runDistillation(dm, ctx, { end: 2, runSeed: 'chunk', extraLoss: metaddExtraLoss(nets, weights, 0) });
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const chunked = await runDistillation(dm, ctx, {
      end: 2,
      runSeed: 'chunk',
      extraLoss: metaddExtraLoss(nets, weights, 4),
      progress: { update: () => counts.push(tf.memory().numTensors) },
    });
    let maxDiff = 0;
    let moved = 0;
    const init = await runDistillation(dm, ctx, { end: 0, runSeed: 'chunk' });
    for (let i = 0; i < whole.images.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(whole.images[i] - chunked.images[i]));
      moved = Math.max(moved, Math.abs(whole.images[i] - init.images[i]));
    }
    assert.ok(moved > 1e-2, 'the update must move the images');
    assert.ok(maxDiff < 1e-4 * moved, `chunked vs whole: ${maxDiff} (moved ${moved})`);
    assert.equal(new Set(counts).size, 1);
    assert.equal(tf.memory().numTensors, before);
    for (const n of nets) tf.dispose(Object.values(n.params));
  });
});

describe('MetaDD relative weights (calibration)', () => {
  before(useCpu);

  it("baseGradientNorm is the norm of the gradient the driver's next update applies (same draws)", async () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const ctx = methodContext(real, 2);
    // Plain SGD at lr 1 without momentum: the first update moves the images by exactly the gradient.
    const dm = createDm({ ...DM, momentum: 0 });
    const base = await runDistillation(dm, ctx, { end: 3, runSeed: 'cal' });
    const norm = baseGradientNorm(dm, ctx, { images: base.images, labels: base.labels, iteration: 3, runSeed: 'cal' });
    const next = await runDistillation(dm, ctx, { end: 4, runSeed: 'cal', start: { images: base.images, labels: base.labels, iteration: 3 } });
    let sq = 0;
    for (let i = 0; i < base.images.length; i++) sq += (base.images[i] - next.images[i]) ** 2;
    assert.ok(norm > 0);
    assert.ok(Math.abs(Math.sqrt(sq) - norm) < 1e-4 * norm, `update ${Math.sqrt(sq)} vs measured ${norm}`);
    // Another iteration draws another network: another gradient.
    const other = baseGradientNorm(dm, ctx, { images: base.images, labels: base.labels, iteration: 4, runSeed: 'cal' });
    assert.notEqual(other, norm);
  });

  it('termGradientNorms (chunked) equal the norms of whole-set gradients of each term', () => {
    const real = tinyData({ classes: 3, perClass: 12 });
    const nets = [randomAux(4, 2, 'aux-h', real), randomAux(3, 1, 'aux-i', real)];
    const rng = createRng('tg');
    const n = 7;
    const images = Float32Array.from({ length: n * real.channels * real.height * real.width }, () => rng.normal());
    const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
    const x = nchwToTensor(images, n, real.channels, real.height, real.width);
    const got = termGradientNorms(nets, x, labels, ['ai', 'var', 'pos'], 3);
    assert.deepEqual(Object.keys(termGradientNorms(nets, x, labels, ['var'], 3)), ['var'], 'only the requested terms');
    const y = tf.tensor1d(labels, 'int32');
    const direct = (f: (outs: ReturnType<typeof auxOutputs>[]) => tf.Scalar): number =>
      tf.tidy(() => tf.norm(tf.grad((xi: tf.Tensor) => f(nets.map((net) => auxOutputs(net, xi as tf.Tensor4D, y))))(x)).dataSync()[0]);
    const want = {
      ai: direct((o) => architectureInvariantLoss(o.map((q) => q.logits), y).total),
      var: direct((o) => camVarianceLoss(o.map((q) => q.cams))),
      pos: direct((o) => metaFeatureLoss(o.map((q) => q.cams))),
    };
    for (const k of ['ai', 'var', 'pos'] as const) {
      assert.ok(want[k] > 0, `${k}: zero gradient`);
      const g = got[k] ?? Number.NaN;
      assert.ok(Math.abs(g - want[k]) < 1e-4 * want[k], `${k}: chunked ${g} vs whole ${want[k]}`);
    }
    tf.dispose([x, y]);
    for (const net of nets) tf.dispose(Object.values(net.params));
  });
});

describe('metadd stage', () => {
  let root: string;
  before(async () => {
    await useCpu();
    root = mkdtempSync(join(tmpdir(), 'metadd-stage-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const dmParams = (iterations: number): DistillParams => ({
    method: 'dm',
    ipc: 2,
    iterations,
    lr_img: 1,
    momentum: 0.5,
    batch_real: 8,
    init: 'real',
    arch: normalizeArch({ name: 'convnet', width: 4, depth: 2 }),
    dsa: true,
    seed: 0,
  });

  const metaddParams = (base: Record<string, unknown>, arm: 'control' | 'metadd', over: Partial<MetaddParams> = {}): MetaddParams => ({
    base: base as MetaddParams['base'],
    seed: 0,
    arm,
    mode: 'refine',
    iterations: 3,
    aux: [{ name: 'convnet', width: 4, depth: 2, head: 'gap' }, { name: 'convnet', width: 3, depth: 1, head: 'gap' }],
    lambda_ai: arm === 'control' ? 0 : 1,
    lambda_var: arm === 'control' ? 0 : 10,
    tau: 0.5,
    image_lr: 1,
    momentum: 0.5,
    diagnostics: { real_per_class: 4, overlays_per_class: 1 },
    ...over,
  });

  it('control continues the distill stage exactly; metadd writes the set, diagnostics and overlays', async () => {
    const dsDir = join(root, 'dataset');
    writeTinyDataset(dsDir, { classes: 3, perClass: 10 });
    const dataset = viewOf('dataset', dsDir, 'dataset-key');
    const runStage = async <P>(stage: { run(ctx: import('../src/stages/contract.js').StageContext<P>): Promise<void> }, kind: 'distill' | 'pretrain' | 'metadd', params: P, inputs: Record<string, ReturnType<typeof viewOf>>, seed: string) => {
      const s = stageContext(kind, params, inputs, root, seed);
      await stage.run(s.ctx);
      return { view: viewOf(kind, s.outDir), records: s.records };
    };
    const base = await runStage(distillStage, 'distill', dmParams(3), { dataset }, 'distill-3');
    const longer = await runStage(distillStage, 'distill', dmParams(6), { dataset }, 'distill-6');
    const pre = (width: number, depth: number): PretrainParams => ({
      arch: { name: 'convnet', width, depth, head: 'gap' },
      epochs: 2,
      lr: 0.01,
      momentum: 0.9,
      weight_decay: 5e-4,
      batch: 16,
      augment: 'none',
      snapshots: false,
      seed: 0,
    });
    const aux0 = await runStage(pretrainStage, 'pretrain', pre(4, 2), { dataset }, 'aux0');
    const aux1 = await runStage(pretrainStage, 'pretrain', pre(3, 1), { dataset }, 'aux1');
    const inputs = { dataset, images: base.view, aux0: aux0.view, aux1: aux1.view };
    const { method: _m, seed: _s, ...rest } = dmParams(3);
    const baseKey = { method: 'dm', ...rest };

    const control = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'control'), inputs, 'md-control');
    const img = (dir: string) => readNpy(join(dir, 'images.npy')).data as Float32Array;
    assert.ok(bytesEqual(img(control.view.dir), img(longer.view.dir)), 'control = the base method run for T + K iterations');
    assert.equal(control.view.meta.iterations, 6);

    const md = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'metadd'), inputs, 'md-metadd');
    assert.ok(!bytesEqual(img(md.view.dir), img(control.view.dir)));
    for (const f of ['images.npy', 'labels.npy', 'grid.png', 'state/momentum.npy', 'diagnostics.json', 'cams_real.png', 'cams_base.png', 'cams_aligned.png']) {
      assert.ok(existsSync(join(md.view.dir, f)), `${f} written`);
    }
    const diag = JSON.parse(readFileSync(join(md.view.dir, 'diagnostics.json'), 'utf8')) as Record<string, { ratios: { heterogeneous: unknown[] }; accuracy: number[] }>;
    for (const which of ['real', 'base', 'aligned']) {
      assert.equal(diag[which].ratios.heterogeneous.length, 2);
      assert.equal(diag[which].accuracy.length, 2);
    }
    const metrics = new Set(md.records.filter((r) => r.type === 'metric').map((r) => (r as { key: string }).key));
    for (const k of ['loss', 'base', 'ai', 'ai_ce', 'ai_kl', 'var', 'diag.real.meta_ratio', 'diag.base.meta_ratio', 'diag.aligned.meta_ratio', 'peak_rss_mb', 'seconds_per_iteration', 'cpu_seconds_per_iteration', 'pixel_std', 'base.pixel_std', 'pixel_outside_real_range', 'base.pixel_outside_real_range']) {
      assert.ok(metrics.has(k), `metric ${k} logged`);
    }
    assert.ok([...metrics].some((k) => k.startsWith('diag.aligned.het_ratio.1_')));
    const meta = md.view.meta as { metadd: { arm: string; aux: string[] }; iterations: number; base_iterations: number; cpu_seconds_per_iteration: number };
    assert.equal(meta.metadd.arm, 'metadd');
    assert.ok(meta.cpu_seconds_per_iteration > 0, 'the cost per iteration in CPU time');
    assert.equal(meta.base_iterations, 3);
    assert.equal(meta.iterations, 6);

    // metadd.chunk: another number of images per tape, the same update up to float summation order.
    const perImage = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'metadd', { chunk: 1 }), inputs, 'md-chunk1');
    const moved = maxAbsDiff(img(md.view.dir), img(base.view.dir));
    assert.ok(maxAbsDiff(img(perImage.view.dir), img(md.view.dir)) < 1e-4 * moved, 'chunks of 1 image give the default chunk\'s update');
    assert.equal((perImage.view.meta as { metadd: { chunk?: number } }).metadd.chunk, 1);
    assert.equal((md.view.meta as { metadd: { chunk?: number } }).metadd.chunk, undefined, 'the default is not written');
    const chunkParam = (records: typeof md.records) => records.find((r) => r.type === 'param' && (r as { key: string }).key === 'chunk') as { value: unknown } | undefined;
    assert.equal(chunkParam(perImage.records)?.value, '1');
    assert.equal(chunkParam(md.records)?.value, '10');

    // Relative weights: each term's weight is r x ||grad L_base|| / ||grad L_t|| at the first update.
    const rel = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'metadd', { lambda_ai: 0, lambda_var: 0, relative_weights: { ai: 0.2, var: 0.1, pos: 0 } }), inputs, 'md-rel');
    const cal = (rel.view.meta as { calibration: { base_grad_norm: number; term_grad_norms: { ai: number; var: number; pos?: number }; lambda_ai: number; lambda_var: number; lambda_pos: number } }).calibration;
    assert.ok(cal.base_grad_norm > 0 && cal.term_grad_norms.ai > 0 && cal.term_grad_norms.var > 0);
    assert.equal(cal.term_grad_norms.pos, undefined, 'a term with fraction 0 is not measured');
    assert.equal(cal.lambda_pos, 0);
    assert.ok(Math.abs(cal.lambda_ai * cal.term_grad_norms.ai - 0.2 * cal.base_grad_norm) < 1e-6 * cal.base_grad_norm);
    assert.ok(Math.abs(cal.lambda_var * cal.term_grad_norms.var - 0.1 * cal.base_grad_norm) < 1e-6 * cal.base_grad_norm);
    assert.equal(cal.lambda_pos, 0);
    assert.equal((rel.view.meta as { metadd: { lambda_ai: number } }).metadd.lambda_ai, cal.lambda_ai, 'the derived weight is the one used');
    assert.ok(!bytesEqual(img(rel.view.dir), img(control.view.dir)));
    assert.equal((md.view.meta as { calibration: unknown }).calibration, null, 'absolute weights: no calibration');

    // Joint mode: the base method from its own initialisation with the terms on from iteration 0.
    const jointInputs = { dataset, aux0: aux0.view, aux1: aux1.view };
    const jointControl = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'control', { mode: 'joint', iterations: 6 }), jointInputs, 'md-joint-control');
    assert.ok(bytesEqual(img(jointControl.view.dir), img(longer.view.dir)), 'joint with zero weights = the base run of the same budget');
    const joint = await runStage(metaddStage, 'metadd', metaddParams(baseKey, 'metadd', { mode: 'joint', iterations: 6 }), jointInputs, 'md-joint');
    assert.ok(!bytesEqual(img(joint.view.dir), img(longer.view.dir)));
    assert.ok(!bytesEqual(img(joint.view.dir), img(md.view.dir)), 'joint differs from refine');
    const jointMeta = joint.view.meta as { metadd: { mode: string }; iterations: number; base_iterations: number };
    assert.equal(jointMeta.metadd.mode, 'joint');
    assert.equal(jointMeta.base_iterations, 0);
    assert.equal(jointMeta.iterations, 6);
    const jointDiag = JSON.parse(readFileSync(join(joint.view.dir, 'diagnostics.json'), 'utf8')) as Record<string, unknown>;
    assert.ok('init' in jointDiag && !('base' in jointDiag), 'joint diagnoses the initial set');
    assert.ok(existsSync(join(joint.view.dir, 'cams_init.png')));
    const jointAi = joint.records.filter((r) => r.type === 'metric' && r.key === 'ai');
    assert.equal(Math.min(...jointAi.map((r) => (r as { step: number }).step)), 0, 'the terms are logged from iteration 0');
  });

  function maxAbsDiff(a: Float32Array, b: Float32Array): number {
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    return d;
  }

  it('on a random subset: the metadd arm moves only by L_ai + L_var, the control arm leaves it unchanged', async () => {
    const dsDir = join(root, 'dataset-r');
    writeTinyDataset(dsDir, { classes: 3, perClass: 10 });
    const dataset = viewOf('dataset', dsDir, 'dataset-r');
    const s = stageContext('distill', { method: 'random', ipc: 2, seed: 0 }, { dataset }, root, 'random');
    await distillStage.run(s.ctx);
    const baseView = viewOf('distill', s.outDir);
    const auxDirs: ReturnType<typeof viewOf>[] = [];
    for (const [i, width] of [4, 3].entries()) {
      const a = stageContext('pretrain', { arch: { name: 'convnet', width, depth: 2, head: 'gap' }, epochs: 1, lr: 0.01, momentum: 0.9, weight_decay: 0, batch: 16, augment: 'none', snapshots: false, seed: i } as PretrainParams, { dataset }, root, `raux${i}`);
      await pretrainStage.run(a.ctx);
      auxDirs.push(viewOf('pretrain', a.outDir));
    }
    const inputs = { dataset, images: baseView, aux0: auxDirs[0], aux1: auxDirs[1] };
    const params = (arm: 'control' | 'metadd') =>
      metaddParams({ method: 'random', ipc: 2 }, arm, { aux: [{ name: 'convnet', width: 4, depth: 2, head: 'gap' }, { name: 'convnet', width: 3, depth: 2, head: 'gap' }], image_lr: 0.1 });
    const img = (dir: string) => readNpy(join(dir, 'images.npy')).data as Float32Array;
    const c = stageContext('metadd', params('control'), inputs, root, 'r-control');
    await metaddStage.run(c.ctx);
    assert.ok(bytesEqual(img(c.outDir), img(baseView.dir)), 'no base loss and no MetaDD weight: nothing moves');
    const m = stageContext('metadd', params('metadd'), inputs, root, 'r-metadd');
    await metaddStage.run(m.ctx);
    assert.ok(!bytesEqual(img(m.outDir), img(baseView.dir)));
    const baseLoss = m.records.filter((r) => r.type === 'metric' && r.key === 'base').map((r) => (r as { value: number }).value);
    assert.ok(baseLoss.length > 0 && baseLoss.every((v) => v === 0), 'random has no base loss');
  });
});
