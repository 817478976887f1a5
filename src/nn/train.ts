import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import { dsa, type DsaOptions } from './dsa.js';
import { updateBnState } from './layers.js';
import { correctCount, crossEntropy, kdLoss, softCrossEntropy } from './losses.js';
import { disposeParams, sgdStep } from './sgd.js';
import type { BnBatchStats, BnState, Model, Params } from './types.js';
import { batchOf, type LabeledImages } from './data.js';

export interface TrainConfig {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  batch: number;
  /**
   * 1-based: after this many epochs the lr is multiplied by 0.1 and the momentum buffers restart, as the
   * reference recreates its optimizer. null/undefined: constant lr. See docs/models.md for how this maps
   * to the reference's `lr_schedule = [E // 2 + 1]`.
   */
  decayEpoch?: number | null;
  augment?: 'none' | 'dsa';
  /** DSA strategy and parameters for `augment: 'dsa'` (per-image draws, as the reference trains). */
  dsa?: Omit<DsaOptions, 'siamese'>;
  /** Temperature for soft targets (default 1). */
  temperature?: number;
  /** Test accuracy every this many epochs (and always after the last); 0 or absent: after the last only. */
  testEvery?: number;
  /** Batch size for evaluation (memory bound only; default 500). */
  evalBatch?: number;
  /**
   * Memory bound only: each step's batch goes through the network in chunks of this many images, each on
   * its own tape, their gradients summed with the chunks' shares of the batch; the same step as the whole
   * batch up to float summation order. Not for networks with batch norm (each chunk would be normalised by
   * its own statistics). Absent: the whole batch on one tape. Also the batch of the test-set passes when
   * `evalBatch` is not given (inference keeps every activation of its batch until the batch is done).
   */
  microBatch?: number;
  /**
   * Knowledge distillation (SRe2L's relabel): every training batch, after augmentation, is labelled by
   * the teacher and the loss is `kdLoss` at `temperature` instead of the (hard or stored soft) labels.
   */
  kd?: KdTeacher;
}

/** A frozen teacher for knowledge distillation. */
export interface KdTeacher {
  /** Logits [N, classes] of the teacher for a batch (evaluation mode); called outside the gradient tape. */
  logits(x: tf.Tensor4D): tf.Tensor2D;
  temperature: number;
}

export interface TrainCurves {
  /** Mean training loss of each epoch (over the augmented batches, as the reference reports it). */
  trainLoss: number[];
  /** Training accuracy of each epoch on the augmented batches. */
  trainAccuracy: number[];
  /** 1-based epochs at which the test set was read, and the accuracies there. */
  testEpochs: number[];
  testAccuracy: number[];
}

/** Everything needed to continue training exactly where it stopped, at an epoch boundary or inside an epoch. */
export interface TrainState {
  /** Completed epochs. */
  epoch: number;
  /** Optimisation steps completed inside epoch `epoch + 1` (0 at an epoch boundary). */
  step: number;
  /** Running sums of that epoch's completed steps, for its curves: loss x batch size, correct predictions. */
  epochSums: { loss: number; correct: number };
  params: Params;
  /** Momentum buffers ({} before the first step and after an lr decay). */
  buffers: Params;
  bnState: BnState;
  curves: TrainCurves;
}

export interface TrainHooks {
  /** After every epoch, once `state` is final for that epoch (checkpoint here). Do not dispose `state`. */
  onEpoch?(state: TrainState): void | Promise<void>;
  /** After every optimisation step. */
  onStep?(epoch: number, step: number, steps: number, loss: number): void;
  /**
   * After every step that does not end an epoch, once `state` is consistent mid-epoch (`state.step` steps
   * of epoch `state.epoch + 1` done): a checkpoint here resumes inside the epoch. Do not dispose `state`.
   */
  afterStep?(state: TrainState): void | Promise<void>;
  signal?: AbortSignal;
}

/** A fresh state: parameters from `rng` (the init stream), PyTorch-initialised running statistics. */
export function initTrainState(model: Model, rng: Rng): TrainState {
  return {
    epoch: 0,
    step: 0,
    epochSums: { loss: 0, correct: 0 },
    params: model.init(rng),
    buffers: {},
    bnState: model.initBnState(),
    curves: { trainLoss: [], trainAccuracy: [], testEpochs: [], testAccuracy: [] },
  };
}

export function disposeTrainState(s: TrainState): void {
  disposeParams(s.params, s.buffers, s.bnState);
}

/** The lr of 1-based epoch e. */
export function lrAt(cfg: TrainConfig, epoch: number): number {
  return cfg.decayEpoch != null && epoch > cfg.decayEpoch ? cfg.lr * 0.1 : cfg.lr;
}

/**
 * The RNG of epoch e (1-based): shuffling (`shuffle`) and augmentation (`augment`, one child per step).
 * Deriving the streams per epoch and per step makes a resume exact at any step.
 */
export function epochRng(rng: Rng, epoch: number): Rng {
  return rng.child(`epoch-${epoch}`);
}

export interface EvalResult {
  accuracy: number;
  loss: number;
}

/** Accuracy and mean cross-entropy over a set, in batches (evaluation mode: running BN statistics). */
export function evaluate(model: Model, params: Params, bnState: BnState, set: LabeledImages, batch = 500): EvalResult {
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < set.n; start += batch) {
    const idx = Array.from({ length: Math.min(batch, set.n - start) }, (_, i) => start + i);
    const b = batchOf(set, idx);
    const [ok, loss] = tf.tidy(() => {
      const logits = model.forward(params, b.x, { training: false, bnState });
      return [correctCount(logits, b.y), crossEntropy(logits, b.y).dataSync()[0] * idx.length];
    });
    correct += ok;
    lossSum += loss;
    b.x.dispose();
    b.y.dispose();
    b.soft?.dispose();
  }
  return { accuracy: set.n ? correct / set.n : 0, loss: set.n ? lossSum / set.n : 0 };
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Mini-batch SGD (PyTorch semantics, sgd.ts) from `start` (or a fresh init) up to `cfg.epochs`.
 * Each epoch shuffles with `epochRng(rng, e)` and draws each step's augmentations from its own child
 * stream, so a run resumed from any saved `TrainState` (an epoch boundary or inside an epoch) reproduces
 * an uninterrupted one bit for bit. The last batch of an epoch may be
 * smaller (PyTorch DataLoader, drop_last = False). Consumes `start`: its tensors are disposed as training
 * replaces them; the returned state belongs to the caller.
 */
export async function train(
  model: Model,
  data: LabeledImages,
  test: LabeledImages | null,
  cfg: TrainConfig,
  rng: Rng,
  start: TrainState,
  hooks: TrainHooks = {},
): Promise<TrainState> {
  if (data.n === 0) throw new Error('train: empty training set');
  if (!(cfg.batch >= 1)) throw new Error('train: batch must be >= 1');
  const names = model.paramSpecs.map((s) => s.name);
  const hasBn = model.bnSpecs.length > 0;
  const temperature = cfg.temperature ?? 1;
  const kd = cfg.kd;
  const steps = Math.ceil(data.n / cfg.batch);
  if (cfg.microBatch !== undefined && cfg.microBatch < cfg.batch && hasBn) {
    throw new Error(`train: micro-batches of ${cfg.microBatch} would normalise each by its own batch-norm statistics (${model.arch.name} has batch norm); train it without micro_batch`);
  }
  const state = start;

  for (let epoch = state.epoch + 1; epoch <= cfg.epochs; epoch++) {
    const erng = epochRng(rng, epoch);
    const order = erng.child('shuffle').permutation(data.n);
    const augRng = erng.child('augment');
    const lr = lrAt(cfg, epoch);
    // Nonzero only when resuming inside this epoch.
    let lossSum = state.epochSums.loss;
    let correct = state.epochSums.correct;
    for (let s = state.step; s < steps; s++) {
      hooks.signal?.throwIfAborted();
      const idx = order.subarray(s * cfg.batch, Math.min(data.n, (s + 1) * cfg.batch));
      const b = batchOf(data, idx, model.input.classes);
      const xb = cfg.augment === 'dsa' ? dsa(b.x, augRng.child(`step-${s}`), { ...cfg.dsa, siamese: false }) : b.x;
      // Soft targets of this very crop: computed before the tape, so nothing flows into the teacher.
      const teacherLogits = kd ? tf.tidy(() => kd.logits(xb)) : undefined;
      const stats: Record<string, BnBatchStats> = {};
      const keptLogits: tf.Tensor2D[] = [];
      const { value, grads } = chunkedValueAndGrads(idx.length, cfg.microBatch, names, state.params, (lo, size) => {
        const part = <T extends tf.Tensor>(t: T): T => (size === idx.length ? t : (tf.slice(t, lo, size) as T));
        return (p: Params): tf.Scalar => {
          const out = model.forward(p, part(xb), { training: true, bnStats: hasBn ? stats : undefined });
          keptLogits.push(tf.keep(out));
          for (const st of Object.values(stats)) {
            tf.keep(st.mean);
            tf.keep(st.variance);
          }
          if (teacherLogits && kd) return kdLoss(out, part(teacherLogits), kd.temperature);
          return b.soft ? softCrossEntropy(out, part(b.soft), temperature) : crossEntropy(out, part(b.y));
        };
      });
      const gradMap: Params = {};
      names.forEach((n, i) => (gradMap[n] = grads[i]));
      const next = sgdStep(state.params, gradMap, state.buffers, { lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay });
      disposeParams(state.params, state.buffers, gradMap);
      state.params = next.params;
      state.buffers = next.buffers;
      if (hasBn) {
        const bn = updateBnState(state.bnState, stats);
        disposeParams(state.bnState);
        state.bnState = bn;
      }
      const loss = value.dataSync()[0];
      lossSum += loss * idx.length;
      const logits = keptLogits.length === 1 ? keptLogits[0] : tf.concat(keptLogits, 0);
      correct += correctCount(logits, b.y);
      value.dispose();
      tf.dispose([logits, ...keptLogits]);
      for (const st of Object.values(stats)) tf.dispose([st.mean, st.variance]);
      if (xb !== b.x) xb.dispose();
      teacherLogits?.dispose();
      tf.dispose([b.x, b.y]);
      b.soft?.dispose();
      hooks.onStep?.(epoch, s + 1, steps, loss);
      if (s + 1 < steps) {
        state.step = s + 1;
        state.epochSums = { loss: lossSum, correct };
        await hooks.afterStep?.(state);
      }
      await yieldToEventLoop();
    }
    state.step = 0;
    state.epochSums = { loss: 0, correct: 0 };
    state.curves.trainLoss.push(lossSum / data.n);
    state.curves.trainAccuracy.push(correct / data.n);
    const every = cfg.testEvery ?? 0;
    if (test && (epoch === cfg.epochs || (every > 0 && epoch % every === 0))) {
      state.curves.testEpochs.push(epoch);
      state.curves.testAccuracy.push(evaluate(model, state.params, state.bnState, test, cfg.evalBatch ?? cfg.microBatch).accuracy);
    }
    if (cfg.decayEpoch != null && epoch === cfg.decayEpoch) {
      disposeParams(state.buffers);
      state.buffers = {};
    }
    state.epoch = epoch;
    await hooks.onEpoch?.(state);
  }
  return state;
}

/**
 * The loss of one batch of `n` images and its gradients w.r.t. `params` (in `names` order). With `chunk`
 * below n, the batch is cut into consecutive chunks of that many images, each differentiated on its own
 * tape (`lossOf(lo, size)` builds the loss of images lo..lo+size-1, a mean over them), and the values and
 * gradients are summed weighted by size / n: the mean over the batch, with one chunk's activations alive
 * at a time.
 */
function chunkedValueAndGrads(
  n: number,
  chunk: number | undefined,
  names: string[],
  params: Params,
  lossOf: (lo: number, size: number) => (p: Params) => tf.Scalar,
): { value: tf.Scalar; grads: tf.Tensor[] } {
  const asFn = (f: (p: Params) => tf.Scalar) => (...ps: tf.Tensor[]): tf.Scalar => {
    const p: Params = {};
    names.forEach((name, i) => (p[name] = ps[i]));
    return f(p);
  };
  const xs = names.map((name) => params[name]);
  if (!chunk || chunk >= n) return tf.valueAndGrads(asFn(lossOf(0, n)))(xs);
  let value: tf.Scalar | undefined;
  let grads: tf.Tensor[] = [];
  for (let lo = 0; lo < n; lo += chunk) {
    const size = Math.min(chunk, n - lo);
    const share = size / n;
    const part = tf.valueAndGrads(asFn(lossOf(lo, size)))(xs);
    const next = tf.tidy(() => ({
      value: value ? tf.add(value, tf.mul(part.value, share)) : tf.mul(part.value, share),
      grads: part.grads.map((g, i) => (grads[i] ? tf.add(grads[i], tf.mul(g, share)) : tf.mul(g, share))),
    }));
    tf.dispose([part.value, ...part.grads, ...(value ? [value] : []), ...grads]);
    value = next.value as tf.Scalar;
    grads = next.grads;
  }
  return { value: value as tf.Scalar, grads };
}
