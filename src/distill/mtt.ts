import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { listSnapshots, paramSignature, readTensors, snapshotDir, type ModelJson } from '../nn/checkpoint.js';
import { applyDsa, drawDsa, dsaStrategyFor, type DsaTransform } from '../nn/dsa.js';
import { crossEntropy } from '../nn/losses.js';
import type { ArchSpec, Model, Params } from '../nn/types.js';
import { initialSet, type InitKind } from './init.js';
import { lazyModel } from './lazy-model.js';
import type { DistillMethod, MethodContext } from './method.js';
import { clampToRealRange } from './pixel-range.js';

/** Resolved MTT parameters (registry.ts) plus the expert artifacts. */
export interface MttConfig {
  lr: number;
  momentum: number;
  /** Learning rate of the learned student lr (its momentum is `momentum`, as in the reference). */
  lrLr: number;
  /** Initial student lr. */
  lrTeacher: number;
  synSteps: number;
  /** Synthetic images per student step; null: the whole set. */
  batchSyn: number | null;
  /** Start epochs are drawn from 0..maxStartEpoch-1. */
  maxStartEpoch: number;
  /** M: expert epochs between the start and the target parameters. */
  expertEpochsMatched: number;
  init: InitKind;
  arch: ArchSpec;
  dsa: boolean;
  /** Clamp the pixels to the range of real ones after every update (not in the reference). */
  clipPixels: boolean;
  dataset: string;
  /** Pretrain artifact directories of the experts (each with `snapshots/epoch_<e>`). */
  experts: string[];
}

/** The learned variable MTT declares: the student's learning rate. */
export const SYN_LR = 'syn_lr';

interface MttState {
  expert: number;
  startEpoch: number;
}

interface MttPrepared {
  /** theta*_t and theta*_{t+M}, in the model's canonical parameter order. */
  start: Params;
  target: Params;
  /** sum over parameters of ||theta*_t - theta*_{t+M}||^2. */
  startDist: tf.Scalar;
  /** Per student step, the synthetic images it trains on, and its DSA draw (null without DSA). */
  batches: Int32Array[];
  transforms: (DsaTransform | null)[];
}

/**
 * The batches of the N student steps, as the reference cuts them: a random permutation of the set split
 * into chunks of `batch`, taken from the last chunk backwards, and a fresh permutation whenever the
 * chunks run out.
 */
export function studentBatches(n: number, batch: number, steps: number, perm: () => Int32Array): Int32Array[] {
  const out: Int32Array[] = [];
  const chunks: Int32Array[] = [];
  for (let s = 0; s < steps; s++) {
    if (chunks.length === 0) {
      const p = perm();
      for (let i = 0; i < n; i += batch) chunks.push(p.slice(i, Math.min(n, i + batch)));
    }
    out.push(chunks.pop() as Int32Array);
  }
  return out;
}

/**
 * The MTT objective for given start and target parameters, differentiable w.r.t. `syn` and `synLr`:
 * N steps p_{i+1} = p_i - synLr * grad_p CE(f(p_i, aug_i(syn[batch_i])), labels[batch_i]) from
 * p_0 = start, each gradient kept differentiable (the loss differentiates through the unrolled steps),
 * then sum ||p_N - target||^2 / startDist. Exported for the tests' independent check.
 */
export function unrolledMatchLoss(
  model: Model,
  start: Params,
  target: Params,
  startDist: tf.Scalar,
  syn: tf.Tensor4D,
  labels: Int32Array,
  synLr: tf.Tensor,
  batches: Int32Array[],
  transforms: (DsaTransform | null)[],
): tf.Scalar {
  const names = model.paramSpecs.map((s) => s.name);
  let params: tf.Tensor[] = names.map((n) => start[n]);
  batches.forEach((idx, i) => {
    const x0 = tf.gather(syn, tf.tensor1d(idx, 'int32')) as tf.Tensor4D;
    const t = transforms[i];
    const x = t ? applyDsa(x0, t) : x0;
    const y = tf.tensor1d(Int32Array.from(idx, (j) => labels[j]), 'int32');
    const f = (...ps: tf.Tensor[]): tf.Scalar => {
      const p: Params = {};
      names.forEach((n, k) => (p[n] = ps[k]));
      return crossEntropy(model.forward(p, x, { training: true }), y);
    };
    const g = tf.grads(f)(params);
    params = params.map((p, k) => tf.sub(p, tf.mul(synLr, g[k])));
  });
  let dist: tf.Tensor = tf.scalar(0);
  names.forEach((n, k) => (dist = tf.add(dist, tf.sum(tf.square(tf.sub(params[k], target[n]))))));
  return tf.div(dist, startDist) as tf.Scalar;
}

/** Checks once per expert that its networks are the student's (same parameter names and shapes). */
function checkExpert(dir: string, model: Model, checked: Set<string>): void {
  if (checked.has(dir)) return;
  const file = join(dir, 'model.json');
  if (!existsSync(file)) throw new Error(`mtt: expert ${dir} has no model.json (is it a pretrain artifact?)`);
  const json = JSON.parse(readFileSync(file, 'utf8')) as ModelJson;
  if (paramSignature(json.params) !== paramSignature(model.paramSpecs)) {
    throw new Error(`mtt: expert ${dir} (${JSON.stringify(json.arch)}) does not have the student's parameters (${JSON.stringify(model.arch)})`);
  }
  checked.add(dir);
}

/**
 * Matching training trajectories (Cazenavette et al., CVPR 2022; reference mtt-distillation
 * distill.py). Each iteration draws an expert and a start epoch t; the student starts at the expert's
 * parameters after t epochs, takes `synSteps` SGD steps on augmented synthetic mini-batches with the
 * learned learning rate syn_lr, and the loss is its normalised distance to the expert's parameters
 * after t + M epochs. The images and syn_lr are differentiated through every step (second order).
 */
export function createMtt(cfg: MttConfig): DistillMethod<MttState, MttPrepared> {
  if (cfg.experts.length === 0) throw new Error('mtt: no experts');
  const modelFor = lazyModel(cfg.arch);
  const strategy = dsaStrategyFor(cfg.dataset);
  const checked = new Set<string>();
  const load = (ctx: MethodContext, expert: number, epoch: number): Params => {
    const dir = cfg.experts[expert];
    const model = modelFor(ctx);
    checkExpert(dir, model, checked);
    const snap = snapshotDir(dir, epoch);
    if (!existsSync(snap)) {
      throw new Error(`mtt: expert ${expert} (${dir}) has no snapshot of epoch ${epoch} (it has ${listSnapshots(dir).join(', ') || 'none'})`);
    }
    return readTensors(join(snap, 'params'), model.paramSpecs);
  };
  return {
    name: 'mtt',
    optimizer: { kind: 'sgd', lr: cfg.lr, momentum: cfg.momentum },
    learned: [{ name: SYN_LR, shape: [], init: Float32Array.of(cfg.lrTeacher), lr: cfg.lrLr, momentum: cfg.momentum, meta: 'learned_lr' }],
    stepsPerIteration: 1,
    init: (ctx, rng) => initialSet(ctx, cfg.init, rng),
    beginIteration(_ctx, _iteration, rng) {
      return { expert: rng.int(cfg.experts.length), startEpoch: rng.int(cfg.maxStartEpoch) };
    },
    prepare(ctx, state, _info, rng) {
      const n = ctx.real.classes * ctx.ipc;
      const batch = Math.min(n, cfg.batchSyn ?? n);
      const perms = rng.child('batches');
      const batches = studentBatches(n, batch, cfg.synSteps, () => perms.permutation(n));
      const dsaRng = rng.child('dsa');
      const transforms = batches.map((b, i) =>
        cfg.dsa ? drawDsa(dsaRng.child(`step-${i}`), b.length, ctx.real.height, ctx.real.width, { strategy, siamese: false }) : null,
      );
      const start = load(ctx, state.expert, state.startEpoch);
      const target = load(ctx, state.expert, state.startEpoch + cfg.expertEpochsMatched);
      let startDist: tf.Tensor = tf.scalar(0);
      for (const name of Object.keys(start)) startDist = tf.add(startDist, tf.sum(tf.square(tf.sub(start[name], target[name]))));
      return { start, target, startDist: startDist as tf.Scalar, batches, transforms };
    },
    loss(ctx, _state, prepared, syn, labels, _info, learned) {
      const synLr = learned?.[SYN_LR];
      if (!synLr) throw new Error(`mtt: the driver did not pass the learned '${SYN_LR}'`);
      const model = modelFor(ctx);
      return unrolledMatchLoss(model, prepared.start, prepared.target, prepared.startDist, syn, labels, synLr, prepared.batches, prepared.transforms);
    },
    endIteration: () => undefined,
    // Unclipped, MTT's pixel updates keep raising the set's contrast far past real images' range
    // (docs/results.md, MTT with K = 200), which batch-norm running statistics do not undo.
    ...(cfg.clipPixels ? { constrain: (ctx: MethodContext, syn: tf.Tensor4D) => clampToRealRange(ctx.real, syn) } : {}),
  };
}
