import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import type { RealData } from './real-data.js';

/**
 * The distillation-method contract (docs/methods.md). A method owns its state and its loss on the
 * synthetic images; the driver (`runDistillation`, src/distill/driver.ts) owns the images, the image
 * optimiser, the loop, checkpoints, logging and the divergence guard. MetaDD adds its terms through
 * the driver's `extraLoss` and never needs to know which method it runs with.
 *
 * Units: an *iteration* is the method's reference iteration (DM: one fresh network and one image
 * update; DC/DSA: one fresh network and `stepsPerIteration` = outer-loop image updates with network
 * training in between). A *step* is one image update. Every random draw of iteration `it` and step `s`
 * comes from streams derived from (run seed, it) and (run seed, it, s), so a run resumed at an
 * iteration boundary (or, with `iterationState`, between two steps) repeats exactly what an
 * uninterrupted run does.
 */

/** What a method is given: the real training set and the shape of the synthetic set. */
export interface MethodContext {
  real: RealData;
  ipc: number;
  /** Logs a line to the stage log. */
  log(message: string): void;
}

export interface InitialSet {
  /** [classes * ipc, C, H, W], class-major (class 0's images first). */
  images: Float32Array;
  labels: Int32Array;
}

/**
 * The pixel optimiser. `sgd`: SGD with momentum, PyTorch semantics (v = m v + g; x -= lr v). `adam`:
 * PyTorch Adam (no weight decay, no amsgrad) with bias correction; `schedule: 'cosine'` scales the lr of
 * global step t (0-based) by 0.5 (1 + cos(pi t / T)), T = the run's total steps (end * stepsPerIteration).
 */
export type ImageOptimizer =
  | { kind: 'sgd'; lr: number; momentum: number }
  | { kind: 'adam'; lr: number; beta1: number; beta2: number; eps: number; schedule: 'constant' | 'cosine' };

/**
 * The pixel optimiser's state, NCHW buffers shaped like the set. `sgd`: `buffers.momentum`. `adam`:
 * `buffers.m` and `buffers.v` (first and second moments) and `step`, the number of updates applied (the
 * bias correction's exponent). `step` is 0 for SGD.
 */
export interface OptimizerState {
  kind: ImageOptimizer['kind'];
  buffers: Record<string, Float32Array>;
  step: number;
}

/**
 * A value the method learns alongside the images (MTT: the synthetic learning rate). The driver owns
 * it like the images: differentiates the loss w.r.t. it in the same tape, updates it with its own SGD
 * with momentum (PyTorch semantics), checkpoints it, logs it (a single element under its name, a
 * larger tensor as `<name>_mean`) and returns it in the result.
 */
export interface LearnedVariableSpec {
  /** Also the metric key and the key in `loss`'s `learned` argument. */
  name: string;
  shape: number[];
  /** Initial value (row-major, `shape`'s element count). */
  init: Float32Array;
  lr: number;
  momentum: number;
  /** When set, the stage writes the final value (one number) into the set's meta.json under this key (MTT: `learned_lr`). */
  meta?: string;
}

/** A learned variable's value and its momentum buffer (row-major). */
export interface LearnedState {
  shape: number[];
  value: Float32Array;
  momentum: Float32Array;
}

export interface StepInfo {
  /** 0-based iteration. */
  iteration: number;
  /** 0-based image update within the iteration (< stepsPerIteration). */
  step: number;
  /** Global 0-based step index (iteration * stepsPerIteration + step). */
  globalStep: number;
}

export interface DistillMethod<S = unknown, P = unknown> {
  readonly name: string;
  readonly optimizer: ImageOptimizer;
  /** Values learned with the images (extension of the contract; absent: none). */
  readonly learned?: readonly LearnedVariableSpec[];
  /** Image updates per iteration (1 for DM; the outer loop for DC/DSA). */
  readonly stepsPerIteration: number;
  /** The starting synthetic set (real images or noise), every draw from `rng`. */
  init(ctx: MethodContext, rng: Rng): InitialSet;
  /** Method state for one iteration (DC: a fresh network and its optimiser), drawn from `rng`. */
  beginIteration(ctx: MethodContext, iteration: number, rng: Rng): S;
  /**
   * The targets of one image update computed from real data, outside the gradient tape (DM: the real
   * class-mean embeddings; DC: the real-batch gradients), so the tape never holds the real batches'
   * activations. Tensors anywhere in the result (objects and arrays are walked) are kept by the driver
   * until the step ends, then disposed; everything else the call creates is released.
   */
  prepare(ctx: MethodContext, state: S, info: StepInfo, rng: Rng): P;
  /**
   * The base loss L_base for one image update, differentiable w.r.t. `syn` ([N, H, W, C], NHWC) and the
   * `learned` variables (by name; the driver always passes them, {} when the method declares none;
   * optional so that methods without any can be called without it). Runs inside the driver's gradient
   * tape: every tensor it creates is released by the driver.
   */
  loss(ctx: MethodContext, state: S, prepared: P, syn: tf.Tensor4D, labels: Int32Array, info: StepInfo, learned?: Record<string, tf.Tensor>): tf.Scalar;
  /**
   * Declared when L_base is a sum of terms that each read only one block of rows of the set (DC/DSA:
   * the images of one class). The driver then differentiates the blocks on separate tapes, in order,
   * and concatenates their gradients: the value and the gradient are those of `loss`, and the tape
   * holds one block at a time instead of the whole set (DC's second-order tape of the whole IPC-50 set
   * exceeds the 4 GB WASM heap). A method with learned variables cannot declare blocks.
   */
  readonly blocks?: LossBlocks<S, P>;
  /**
   * After the image update of `info.step` (DC: train the network on the updated set unless it was the
   * last step of the iteration). `syn` is the updated set; the method must not keep it.
   */
  afterStep?(ctx: MethodContext, state: S, syn: tf.Tensor4D, labels: Int32Array, info: StepInfo, rng: Rng): void | Promise<void>;
  /** Releases the state of an iteration. */
  endIteration(state: S): void;
  /**
   * Declared by a method whose iteration state can be written to disk, so that the driver can
   * checkpoint between two image updates of an iteration and a killed run resumes there, not at the
   * iteration's start (DC/DSA at IPC 50: an iteration is 50 image updates and 10-18 minutes here).
   * `load` must give back the state `save` was given exactly (the same bits), or a resumed run would
   * differ from an uninterrupted one.
   */
  readonly iterationState?: IterationStateIO<S>;
  /**
   * Projects the images after every update (SRe2L: clamp to the range real pixels can take). Returns
   * the projected set (the driver assigns it and releases every other tensor the call creates).
   */
  constrain?(ctx: MethodContext, syn: tf.Tensor4D): tf.Tensor4D;
}

/** Writes and reads a method's iteration state (see `DistillMethod.iterationState`). */
export interface IterationStateIO<S> {
  /** Writes `state` into the empty folder `dir`; `state` stays in use. */
  save(ctx: MethodContext, state: S, dir: string): void;
  /** The state of iteration `iteration` that `save` wrote into `dir`. */
  load(ctx: MethodContext, iteration: number, dir: string): S;
}

/** L_base as a sum over row blocks (see `DistillMethod.blocks`). */
export interface LossBlocks<S, P> {
  /** Consecutive, non-overlapping row ranges [start, end) that cover the set, in the order `loss` sums them. */
  rows(ctx: MethodContext): { start: number; end: number }[];
  /** The term of block `index`, differentiable w.r.t. `block` (rows [start, end) of the set, NHWC). */
  loss(ctx: MethodContext, state: S, prepared: P, block: tf.Tensor4D, index: number, info: StepInfo): tf.Scalar;
}

export interface ExtraTerms {
  /** What is weighted into the objective. */
  total: tf.Scalar;
  /** Logged values (each a scalar the driver disposes). */
  terms: Record<string, tf.Scalar>;
}

/**
 * Extra terms added to L_base (MetaDD). They never depend on the method. `compute` returns, for a batch
 * of images, means over those images of per-image quantities: the set can then be split into chunks,
 * each differentiated on its own tape and weighted by its share of the images, which bounds memory to
 * one chunk's activations and gives the gradient of the mean over the whole set.
 */
export interface ExtraLoss {
  /** False: the terms are only measured and logged (no gradient), and the update is exactly the base's. */
  active: boolean;
  /** Images per tape; 0 (or at least the set size) puts the whole set in the base method's tape. */
  chunk: number;
  compute(syn: tf.Tensor4D, labels: Int32Array, info: StepInfo): ExtraTerms;
}
