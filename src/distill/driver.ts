import * as tf from '@tensorflow/tfjs-core';
import type { ProgressReporter } from '../stages/contract.js';
import type { Tracker } from '../tracking/records.js';
import { createRng, deriveSeed, type Rng } from '../util/rng.js';
import { loadCheckpoint, saveCheckpoint, type CurvePoint } from './checkpoint.js';
import { rowChunks } from './chunks.js';
import { nchwToTensor, tensorToNchw } from './layout.js';
import { cosineLr } from './schedule.js';
import { cpuSecondsSince } from '../util/cpu.js';
import type { DistillMethod, ExtraLoss, ImageOptimizer, LearnedState, LossBlocks, MethodContext, OptimizerState, StepInfo } from './method.js';

/**
 * Pixels beyond this magnitude mean the optimisation has diverged: normalised images live within a
 * few units of 0 (MNIST spans [-0.42, 2.8]) and no reference method drives them anywhere near 1e4.
 */
export const EXPLOSION_LIMIT = 1e4;

/** Where a run starts: the method's own initialisation, or a set continued from an earlier run. */
export interface StartPoint {
  images: Float32Array;
  labels: Int32Array;
  /**
   * SGD's momentum buffer (NCHW); null or absent starts it at zero. Shorthand for an `optimizerState` of
   * kind 'sgd' (which wins when both are given); refused by other optimiser kinds.
   */
  momentum?: Float32Array | null;
  /** The pixel optimiser's state; null or absent: a fresh optimiser (zero buffers, step 0). */
  optimizerState?: OptimizerState | null;
  /** Learned variables to continue from (by name); absent ones start at the method's `init`. */
  learned?: Record<string, LearnedState>;
  /** First iteration to run (the iteration index the earlier run stopped at). */
  iteration: number;
}

export interface DriverOptions {
  /** Iteration to stop before (the run covers [start.iteration, end)). */
  end: number;
  /**
   * Seed material of the run. Iteration it draws from (runSeed, it) and step s from (runSeed, it, s),
   * so continuing a run with the same seed from iteration T repeats what an uninterrupted run does.
   */
  runSeed: string;
  /** Defaults to the method's initialisation at iteration 0. */
  start?: StartPoint;
  extraLoss?: ExtraLoss;
  /**
   * Checkpoint into `dir` at the end of an iteration once `every` iterations or `seconds` of wall time
   * have passed since the last one (whichever is set and comes first), and, for a method that declares
   * `iterationState`, also between two image updates of an iteration once `seconds` have passed;
   * resumes from there when a checkpoint with the same fingerprint exists. Checkpoints never change the
   * result.
   */
  checkpoint?: { dir: string; every?: number; seconds?: number; fingerprint: string };
  track?: Tracker;
  /** Prefix of the logged metric keys (e.g. `distill.`). */
  metricPrefix?: string;
  /**
   * Called with `done` = finished iterations after each; within an iteration of several steps also
   * after a step (same `done`, the step in the message) once `stepProgressMs` have passed since the
   * last call (default 30 s), so that a long DC/DSA iteration still shows where it is.
   */
  progress?: ProgressReporter;
  stepProgressMs?: number;
  signal?: AbortSignal;
}

export interface DistillResult {
  /** [N, C, H, W]. */
  images: Float32Array;
  labels: Int32Array;
  shape: [number, number, number, number];
  /** The pixel optimiser's final state (write it with checkpoint.ts `writeOptimizerState`). */
  optimizerState: OptimizerState;
  /**
   * SGD's momentum buffer (`optimizerState.buffers.momentum`); for Adam its first moment `m`. Kept for
   * callers that continue SGD runs only; `optimizerState` is the complete state.
   */
  momentum: Float32Array;
  /** The method's learned variables at the end (by name; {} when it has none). */
  learned: Record<string, LearnedState>;
  /** The iteration the run stopped before (= options.end). */
  end: number;
  /** Each logged term (`loss`, `base`, the extra terms) at the last iteration. */
  lastTerms: Record<string, number>;
  /** Each logged term averaged over the iterations this process ran. */
  meanTerms: Record<string, number>;
  /** Wall-clock seconds per iteration over the image updates this process ran (a partly resumed iteration counts its share). */
  secondsPerIteration: number;
  /** The same in CPU seconds of this process (user + system): the cost, which wall time overstates beside other work. */
  cpuSecondsPerIteration: number;
  /** Iteration the process resumed from, when a checkpoint was used. */
  resumedFrom?: number;
  /** Image updates of that iteration the checkpoint had already done (0 at an iteration boundary). */
  resumedStep?: number;
}

export function iterationRng(runSeed: string, iteration: number): Rng {
  return createRng(deriveSeed(runSeed, 'iteration', iteration));
}

export function stepRng(runSeed: string, iteration: number, step: number): Rng {
  return createRng(deriveSeed(runSeed, 'step', iteration, step));
}

export function initRng(runSeed: string): Rng {
  return createRng(deriveSeed(runSeed, 'init'));
}

/** At most about 1000 points per curve, whatever the budget. */
function logInterval(iterations: number): number {
  return Math.max(1, Math.ceil(iterations / 1000));
}

/** The pixel optimiser's buffers as tensors (NHWC, like the images) and its update. */
interface PixelOptimizer {
  /** Updates `syn` with the gradient `g` of global step `globalStep`. */
  apply(syn: tf.Variable<tf.Rank.R4>, g: tf.Tensor, globalStep: number): void;
  /** The learning rate of global step `globalStep` (for logging and messages). */
  lrAt(globalStep: number): number;
  state(): OptimizerState;
  dispose(): void;
}

/** Names of each kind's buffers, in the order they are created. */
const BUFFERS: Record<ImageOptimizer['kind'], string[]> = { sgd: ['momentum'], adam: ['m', 'v'] };

function createPixelOptimizer(opt: ImageOptimizer, from: OptimizerState | null, shape: [number, number, number, number], totalSteps: number): PixelOptimizer {
  const [n, c, h, w] = shape;
  if (from && from.kind !== opt.kind) throw new Error(`cannot continue a '${from.kind}' optimiser state with a '${opt.kind}' optimiser`);
  const bufs: Record<string, tf.Variable> = {};
  for (const name of BUFFERS[opt.kind]) {
    const data = from?.buffers[name];
    if (from && !data) throw new Error(`the '${opt.kind}' optimiser state has no '${name}' buffer`);
    bufs[name] = toVariable(data ? nchwToTensor(data, n, c, h, w) : tf.zeros([n, h, w, c]), false);
  }
  let step = from?.step ?? 0;
  const state = (): OptimizerState => ({
    kind: opt.kind,
    step,
    buffers: Object.fromEntries(Object.entries(bufs).map(([k, v]) => [k, tensorToNchw(v as tf.Tensor4D)])),
  });
  const dispose = (): void => tf.dispose(Object.values(bufs));
  if (opt.kind === 'sgd') {
    const mom = bufs.momentum;
    return {
      apply(syn, g) {
        tf.tidy(() => {
          mom.assign(tf.add(tf.mul(mom, opt.momentum), g));
          syn.assign(tf.sub(syn, tf.mul(mom, opt.lr)) as tf.Tensor4D);
        });
      },
      lrAt: () => opt.lr,
      state,
      dispose,
    };
  }
  const lrAt = (t: number): number => (opt.schedule === 'cosine' ? cosineLr(opt.lr, t, totalSteps) : opt.lr);
  return {
    apply(syn, g, globalStep) {
      step++;
      // PyTorch's Adam: bias corrections in double precision, then
      // m <- lerp(m, g, 1 - b1); v <- b2 v + (1 - b2) g^2; x <- x - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
      const bc1 = 1 - Math.pow(opt.beta1, step);
      const bc2Sqrt = Math.sqrt(1 - Math.pow(opt.beta2, step));
      const stepSize = lrAt(globalStep) / bc1;
      tf.tidy(() => {
        bufs.m.assign(tf.add(bufs.m, tf.mul(tf.sub(g, bufs.m), 1 - opt.beta1)));
        bufs.v.assign(tf.add(tf.mul(bufs.v, opt.beta2), tf.mul(tf.mul(g, g), 1 - opt.beta2)));
        const denom = tf.add(tf.div(tf.sqrt(bufs.v), bc2Sqrt), opt.eps);
        syn.assign(tf.sub(syn, tf.mul(tf.div(bufs.m, denom), stepSize)) as tf.Tensor4D);
      });
    },
    lrAt,
    state,
    dispose,
  };
}

/** A method's learned variable as the driver holds it. */
interface LearnedVar {
  spec: { name: string; shape: number[]; lr: number; momentum: number };
  value: tf.Variable;
  momentum: tf.Variable;
}

function createLearned<S, P>(method: DistillMethod<S, P>, from: Record<string, LearnedState> | undefined): LearnedVar[] {
  const out: LearnedVar[] = [];
  try {
    for (const spec of method.learned ?? []) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const saved = from?.[spec.name];
      if (saved && saved.shape.join() !== spec.shape.join()) {
        throw new Error(`${method.name}: learned '${spec.name}' is [${saved.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
      }
      if (spec.init.length !== size) throw new Error(`${method.name}: learned '${spec.name}' init has ${spec.init.length} values, expected ${size}`);
      out.push({
        spec,
        value: toVariable(tf.tensor(saved?.value ?? spec.init, spec.shape, 'float32'), true),
        momentum: toVariable(saved ? tf.tensor(saved.momentum, spec.shape, 'float32') : tf.zeros(spec.shape), false),
      });
    }
  } catch (err) {
    for (const l of out) tf.dispose([l.value, l.momentum]);
    throw err;
  }
  return out;
}

function learnedStates(vars: LearnedVar[]): Record<string, LearnedState> {
  return Object.fromEntries(
    vars.map((l) => [l.spec.name, { shape: [...l.spec.shape], value: l.value.dataSync() as Float32Array, momentum: l.momentum.dataSync() as Float32Array }]),
  );
}

/** The logged value of a learned variable: itself when it is one number, else its mean (`<name>_mean`). */
function learnedTerms(vars: LearnedVar[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of vars) {
    const d = l.value.dataSync();
    if (d.length === 1) out[l.spec.name] = d[0];
    else out[`${l.spec.name}_mean`] = Array.from(d).reduce((a, b) => a + b, 0) / d.length;
  }
  return out;
}

/**
 * Runs `method` from `start` (or its initialisation) up to iteration `end`: per step, one tape computes
 * L = L_base + extraLoss(syn) and its gradient w.r.t. the images and the method's learned variables,
 * the pixel optimiser (SGD with momentum or Adam) updates the images and SGD with momentum each learned
 * variable, the loss terms and learned values are logged and the run stops with an error (writing
 * nothing) when the loss, the learned values or the images stop being finite or explode. Tensor memory
 * is released every step.
 */
export async function runDistillation<S, P>(method: DistillMethod<S, P>, ctx: MethodContext, options: DriverOptions): Promise<DistillResult> {
  const { real, ipc } = ctx;
  const { channels: c, height: h, width: w } = real;
  checkContract(method);
  let start = options.start;
  if (!start) {
    const init = method.init(ctx, initRng(options.runSeed));
    start = { images: init.images, labels: init.labels, iteration: 0 };
  }
  const n = start.labels.length;
  if (n !== real.classes * ipc) throw new Error(`${method.name}: the set has ${n} images, expected classes * ipc = ${real.classes * ipc}`);
  const shape: [number, number, number, number] = [n, c, h, w];
  let curve: CurvePoint[] = [];
  let first = start.iteration;
  let resumedFrom: number | undefined;
  // Inside the first iteration: the image updates already done, their term sums and the method's state.
  let firstStep = 0;
  let firstTerms: Record<string, number> = {};
  let methodStateDir: string | undefined;
  const ck = options.checkpoint;
  if (ck) {
    const saved = loadCheckpoint(ck.dir, ck.fingerprint);
    const step = saved?.step ?? 0;
    const ahead = saved !== undefined && (saved.iteration > start.iteration || (saved.iteration === start.iteration && step > 0));
    const within = saved !== undefined && (step > 0 ? saved.iteration < options.end && method.iterationState !== undefined : saved.iteration <= options.end);
    if (saved && ahead && within) {
      if (step > 0 && saved.methodStateDir) {
        // Read when the iteration starts: nothing writes a checkpoint (and removes this one) before.
        methodStateDir = saved.methodStateDir;
        firstStep = step;
        firstTerms = { ...(saved.stepTerms ?? {}) };
      }
      start = { images: saved.images, labels: saved.labels, optimizerState: saved.optimizer, learned: saved.learned, iteration: saved.iteration };
      curve = saved.curve;
      first = saved.iteration;
      resumedFrom = saved.iteration;
      const where = firstStep > 0 ? `iteration ${saved.iteration + 1}, after image update ${firstStep}/${method.stepsPerIteration}` : `iteration ${saved.iteration}`;
      ctx.log(`resuming ${method.name} from the checkpoint at ${where}`);
      for (const p of curve) options.track?.metric(p.key, p.value, p.step);
    }
  }
  const labels = start.labels;
  const opt = method.optimizer;
  let fromState = start.optimizerState ?? null;
  if (!fromState && start.momentum) {
    if (opt.kind !== 'sgd') throw new Error(`${method.name}: a momentum buffer cannot start a '${opt.kind}' optimiser; pass its optimizerState`);
    fromState = { kind: 'sgd', step: 0, buffers: { momentum: start.momentum } };
  }
  const pixelOpt = createPixelOptimizer(opt, fromState, shape, options.end * method.stepsPerIteration);
  let learned: LearnedVar[];
  try {
    learned = createLearned(method, start.learned);
  } catch (err) {
    pixelOpt.dispose();
    throw err;
  }
  const syn = toVariable(nchwToTensor(start.images, n, c, h, w), true) as tf.Variable<tf.Rank.R4>;
  const prefix = options.metricPrefix ?? '';
  const every = logInterval(options.end - (options.start?.iteration ?? 0));
  const total = options.end - first;
  const sums: Record<string, number> = {};
  let lastTerms: Record<string, number> = {};
  let counted = 0;
  // Image updates this process ran: a run resumed inside an iteration ran only part of that one.
  let stepsRun = 0;
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  let lastSave = { iteration: first, time: t0 };
  let lastProgress = t0;
  const stepProgressMs = options.stepProgressMs ?? 30_000;
  const timeDue = (): boolean => ck?.seconds !== undefined && Date.now() - lastSave.time >= ck.seconds * 1000;
  const due = (next: number): boolean => {
    if (!ck) return false;
    if (ck.every !== undefined && next - lastSave.iteration >= ck.every) return true;
    return timeDue();
  };
  const save = (iteration: number, inside?: { step: number; terms: Record<string, number>; state: S }): void => {
    if (!ck) return;
    const io = method.iterationState;
    saveCheckpoint(
      ck.dir,
      {
        iteration,
        fingerprint: ck.fingerprint,
        images: tensorToNchw(syn),
        optimizer: pixelOpt.state(),
        learned: learnedStates(learned),
        shape,
        labels,
        curve,
        step: inside?.step ?? 0,
        stepTerms: inside?.terms,
      },
      inside && io ? (folder) => io.save(ctx, inside.state, folder) : undefined,
    );
  };
  const stopIfAborted = (): void => {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('interrupted');
  };
  try {
    for (let it = first; it < options.end; it++) {
      const resumeDir = it === first ? methodStateDir : undefined;
      const resuming = resumeDir !== undefined && method.iterationState !== undefined;
      const state = resuming ? method.iterationState.load(ctx, it, resumeDir) : method.beginIteration(ctx, it, iterationRng(options.runSeed, it));
      const iterTerms: Record<string, number> = resuming ? firstTerms : {};
      try {
        for (let s = resuming ? firstStep : 0; s < method.stepsPerIteration; s++) {
          const info: StepInfo = { iteration: it, step: s, globalStep: it * method.stepsPerIteration + s };
          const rng = stepRng(options.runSeed, it, s);
          // tidy and dispose walk any object for tensors at run time; the cast only satisfies their types.
          const prepared = tf.tidy(() => method.prepare(ctx, state, info, rng.child('prepare')) as unknown as tf.TensorContainer) as unknown as P;
          let values: Record<string, number>;
          try {
            values = imageStep(method, ctx, state, prepared, syn, pixelOpt, learned, labels, info, options.extraLoss);
          } finally {
            tf.dispose(prepared as unknown as tf.TensorContainer);
          }
          for (const [k, v] of Object.entries(values)) iterTerms[k] = (iterTerms[k] ?? 0) + v / method.stepsPerIteration;
          stepsRun++;
          // The method manages the memory of its own state here (it replaces its network's tensors).
          await method.afterStep?.(ctx, state, syn, labels, info, rng.child('after'));
          if (s < method.stepsPerIteration - 1) {
            if (Date.now() - lastProgress >= stepProgressMs) {
              lastProgress = Date.now();
              options.progress?.update(it - first, total, `iteration ${it + 1}, step ${s + 1}/${method.stepsPerIteration} loss ${fmt(values.loss)}`);
            }
            const aborted = options.signal?.aborted === true;
            // Without a way to save the method's state, an interrupted run finishes its iteration to checkpoint it.
            const resumable = ck !== undefined && method.iterationState !== undefined;
            if (resumable && (timeDue() || aborted)) {
              lastSave = { iteration: lastSave.iteration, time: Date.now() };
              save(it, { step: s + 1, terms: { ...iterTerms }, state });
            }
            if (resumable || !ck) stopIfAborted();
          }
        }
      } finally {
        method.endIteration(state);
      }
      Object.assign(iterTerms, learnedTerms(learned));
      for (const [k, v] of Object.entries(iterTerms)) sums[k] = (sums[k] ?? 0) + v;
      lastTerms = iterTerms;
      counted++;
      if ((it - (options.start?.iteration ?? 0)) % every === 0 || it === options.end - 1) {
        for (const [k, v] of Object.entries(iterTerms)) {
          const point = { key: `${prefix}${k}`, value: v, step: it };
          curve.push(point);
          options.track?.metric(point.key, point.value, point.step);
        }
      }
      lastProgress = Date.now();
      options.progress?.update(it + 1 - first, total, `loss ${fmt(iterTerms.loss)}`);
      const next = it + 1;
      const aborted = options.signal?.aborted === true;
      if (ck && next < options.end && (due(next) || aborted)) {
        lastSave = { iteration: next, time: Date.now() };
        save(next);
      }
      stopIfAborted();
      // Let the event loop deliver signals and progress between iterations.
      await new Promise((r) => setImmediate(r));
    }
    const meanTerms = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(1, counted)]));
    const optimizerState = pixelOpt.state();
    return {
      images: tensorToNchw(syn),
      labels,
      shape,
      optimizerState,
      momentum: optimizerState.buffers[opt.kind === 'sgd' ? 'momentum' : 'm'],
      learned: learnedStates(learned),
      end: options.end,
      lastTerms,
      meanTerms,
      secondsPerIteration: stepsRun > 0 ? ((Date.now() - t0) / 1000 / stepsRun) * method.stepsPerIteration : 0,
      cpuSecondsPerIteration: stepsRun > 0 ? (cpuSecondsSince(cpu0) / stepsRun) * method.stepsPerIteration : 0,
      resumedFrom,
      resumedStep: resumedFrom === undefined ? undefined : firstStep,
    };
  } finally {
    syn.dispose();
    pixelOpt.dispose();
    for (const l of learned) tf.dispose([l.value, l.momentum]);
  }
}

/**
 * The norm of the base method's pixel gradient at the first image update of iteration `at.iteration`:
 * the same draws (network, real batch, augmentation) that update would use, nothing updated, no state
 * kept. What MetaDD's relative weights are scaled against (docs/metadd.md).
 */
export function baseGradientNorm<S, P>(
  method: DistillMethod<S, P>,
  ctx: MethodContext,
  at: { images: Float32Array; labels: Int32Array; iteration: number; runSeed: string; learned?: Record<string, LearnedState> },
): number {
  const { channels: c, height: h, width: w } = ctx.real;
  const n = at.labels.length;
  checkContract(method);
  const learned = createLearned(method, at.learned);
  const state = method.beginIteration(ctx, at.iteration, iterationRng(at.runSeed, at.iteration));
  try {
    const info: StepInfo = { iteration: at.iteration, step: 0, globalStep: at.iteration * method.stepsPerIteration };
    const rng = stepRng(at.runSeed, at.iteration, 0);
    const prepared = tf.tidy(() => method.prepare(ctx, state, info, rng.child('prepare')) as unknown as tf.TensorContainer) as unknown as P;
    try {
      return tf.tidy(() => {
        const learnedArg: Record<string, tf.Tensor> = Object.fromEntries(learned.map((l) => [l.spec.name, l.value]));
        const x = nchwToTensor(at.images, n, c, h, w);
        const grad = method.blocks
          ? blockwiseLoss(method.blocks, ctx, state, prepared, x, info).grad
          : tf.grad((xs: tf.Tensor) => method.loss(ctx, state, prepared, xs as tf.Tensor4D, at.labels, info, learnedArg))(x);
        return tf.norm(grad).dataSync()[0];
      });
    } finally {
      tf.dispose(prepared as unknown as tf.TensorContainer);
    }
  } finally {
    method.endIteration(state);
    for (const l of learned) tf.dispose([l.value, l.momentum]);
  }
}

/** Block-wise differentiation has no tape for the learned variables: the two cannot be combined. */
function checkContract(method: DistillMethod<unknown, unknown>): void {
  if (method.blocks && (method.learned?.length ?? 0) > 0) throw new Error(`${method.name}: a method with learned variables cannot declare loss blocks`);
}

/** A variable initialised from `t` (tf.variable copies its initial value, so `t` is released). */
function toVariable(t: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

function fmt(v: number | undefined): string {
  return v === undefined ? '-' : v.toPrecision(4);
}

/** Images [s, e) of an NHWC tensor. */
function rows(x: tf.Tensor4D, s: number, e: number): tf.Tensor4D {
  return tf.slice(x, [s, 0, 0, 0], [e - s, -1, -1, -1]);
}

/**
 * The gradients of consecutive row chunks as one tensor. Takes the parts: they are released (or the
 * single one returned) and `parts` is emptied, so a caller's cleanup of it releases nothing twice.
 */
function joinRows(parts: tf.Tensor4D[]): tf.Tensor4D {
  const whole = parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor4D);
  if (parts.length > 1) tf.dispose(parts);
  parts.length = 0;
  return whole;
}

/**
 * L_base of a method that declares blocks, and its gradient w.r.t. the set: each block on its own tape,
 * the values summed in block order from 0 (as `loss` sums them), the gradients concatenated.
 */
export function blockwiseLoss<S, P>(blocks: LossBlocks<S, P>, ctx: MethodContext, state: S, prepared: P, syn: tf.Tensor4D, info: StepInfo): { value: tf.Scalar; grad: tf.Tensor4D } {
  const ranges = blocks.rows(ctx);
  let covered = 0;
  for (const r of ranges) {
    if (r.start !== covered || r.end <= r.start) throw new Error(`loss blocks must be consecutive and non-empty: [${r.start}, ${r.end}) after row ${covered}`);
    covered = r.end;
  }
  if (covered !== syn.shape[0]) throw new Error(`loss blocks cover ${covered} rows of a set of ${syn.shape[0]}`);
  let value: tf.Scalar = tf.scalar(0);
  const grads: tf.Tensor4D[] = [];
  try {
    ranges.forEach((r, index) => {
      const x = rows(syn, r.start, r.end);
      try {
        const { value: v, grad } = tf.valueAndGrad((xb: tf.Tensor) => blocks.loss(ctx, state, prepared, xb as tf.Tensor4D, index, info))(x);
        const next = tf.add(value, v) as tf.Scalar;
        tf.dispose([value, v]);
        value = next;
        grads.push(grad as tf.Tensor4D);
      } finally {
        x.dispose();
      }
    });
    return { value, grad: joinRows(grads) };
  } catch (err) {
    tf.dispose([value, ...grads]);
    throw err;
  }
}

/**
 * The extra terms chunk by chunk, each weighted by its share of the images. Active: each chunk is
 * differentiated on its own tape and the returned gradient is the concatenation (same shape as the
 * set). Inactive: measured without a tape.
 */
function chunkedExtra(extra: ExtraLoss, syn: tf.Tensor4D, labels: Int32Array, info: StepInfo): { values: Record<string, number>; grad?: tf.Tensor4D } {
  const values: Record<string, number> = {};
  const grads: tf.Tensor4D[] = [];
  const add = (k: string, v: number, frac: number): void => {
    values[k] = (values[k] ?? 0) + v * frac;
  };
  try {
    for (const { start, end, share: frac } of rowChunks(labels.length, extra.chunk)) {
      const lab = labels.subarray(start, end);
      const x = rows(syn, start, end);
      try {
        if (!extra.active) {
          tf.tidy(() => {
            const r = extra.compute(x, lab, info);
            for (const [k, t] of Object.entries(r.terms)) add(k, t.dataSync()[0], frac);
          });
          continue;
        }
        let kept: Record<string, tf.Scalar> = {};
        const { value, grad } = tf.valueAndGrad((xc: tf.Tensor) => {
          const r = extra.compute(xc as tf.Tensor4D, lab, info);
          kept = Object.fromEntries(Object.entries(r.terms).map(([k, t]) => [k, tf.keep(t)]));
          return r.total;
        })(x);
        add('extra', value.dataSync()[0], frac);
        for (const [k, t] of Object.entries(kept)) add(k, t.dataSync()[0], frac);
        grads.push(tf.tidy(() => tf.mul(grad, frac)));
        tf.dispose([value, grad, ...Object.values(kept)]);
      } finally {
        x.dispose();
      }
    }
    if (!extra.active) return { values };
    return { values, grad: joinRows(grads) };
  } finally {
    tf.dispose(grads);
  }
}

/** One image update; returns the logged values (`loss` = the total, `base`, and each extra term). */
function imageStep<S, P>(
  method: DistillMethod<S, P>,
  ctx: MethodContext,
  state: S,
  prepared: P,
  syn: tf.Variable<tf.Rank.R4>,
  pixelOpt: PixelOptimizer,
  learned: LearnedVar[],
  labels: Int32Array,
  info: StepInfo,
  extraLoss: ExtraLoss | undefined,
): Record<string, number> {
  const lr = pixelOpt.lrAt(info.globalStep);
  const learnedArg: Record<string, tf.Tensor> = Object.fromEntries(learned.map((l) => [l.spec.name, l.value]));
  let kept: Record<string, tf.Scalar> = {};
  // An active extra loss that fits in one chunk shares the base method's tape (one forward of the set),
  // unless the base loss is differentiated block by block.
  const sameTape = extraLoss !== undefined && extraLoss.active && !method.blocks && !(extraLoss.chunk > 0 && extraLoss.chunk < labels.length);
  let value: tf.Scalar;
  let grads: tf.NamedTensorMap;
  if (method.blocks) {
    const blockwise = blockwiseLoss(method.blocks, ctx, state, prepared, syn, info);
    value = blockwise.value;
    grads = { [syn.name]: blockwise.grad };
  } else {
    ({ value, grads } = tf.variableGrads(() => {
      const base = method.loss(ctx, state, prepared, syn, labels, info, learnedArg);
      if (!sameTape || !extraLoss) return base;
      const extra = extraLoss.compute(syn, labels, info);
      // The tape's scope releases everything but its result: keep the terms for logging.
      kept = { base: tf.keep(base), ...Object.fromEntries(Object.entries(extra.terms).map(([k, t]) => [k, tf.keep(t)])) };
      return tf.add(base, extra.total) as tf.Scalar;
    }, [syn, ...learned.map((l) => l.value)]));
  }
  let separate: { values: Record<string, number>; grad?: tf.Tensor4D } | undefined;
  try {
    if (extraLoss && !sameTape) separate = chunkedExtra(extraLoss, syn, labels, info);
  } catch (err) {
    tf.dispose([value, ...Object.values(grads)]);
    throw err;
  }
  const out: Record<string, number> = {};
  const owned: tf.Tensor[] = [];
  try {
    out.loss = value.dataSync()[0];
    for (const [k, t] of Object.entries(kept)) out[k] = t.dataSync()[0];
    if (separate) {
      const { extra, ...terms } = separate.values;
      out.base = out.loss;
      if (extra !== undefined) out.loss += extra;
      Object.assign(out, terms);
    }
    if (separate?.grad) owned.push(separate.grad);
    const g = separate?.grad ? tf.add(grads[syn.name], separate.grad) : grads[syn.name];
    if (g !== grads[syn.name]) owned.push(g);
    if (!Number.isFinite(out.loss)) {
      throw new Error(
        `${method.name}: the loss became ${out.loss} at iteration ${info.iteration} (step ${info.step}); ` +
          `lower the image learning rate (now ${lr}) or the extra-loss weights`,
      );
    }
    for (const l of learned) {
      const gl = grads[l.value.name];
      // A learned variable the loss did not use has no gradient: it keeps its value, as in PyTorch.
      if (!gl) continue;
      const next = tf.tidy(() => {
        const m = tf.add(tf.mul(l.momentum, l.spec.momentum), gl);
        return [m, tf.sub(l.value, tf.mul(m, l.spec.lr))];
      });
      const ok = tf.tidy(() => tf.all(tf.isFinite(next[1])));
      const finite = ok.dataSync()[0] === 1;
      ok.dispose();
      if (!finite) {
        tf.dispose(next);
        throw new Error(
          `${method.name}: the learned '${l.spec.name}' became non-finite at iteration ${info.iteration} (step ${info.step}); ` +
            `lower its learning rate (now ${l.spec.lr})`,
        );
      }
      l.momentum.assign(next[0]);
      l.value.assign(next[1]);
      tf.dispose(next);
    }
    pixelOpt.apply(syn, g, info.globalStep);
    const constrain = method.constrain?.bind(method);
    if (constrain) {
      tf.tidy(() => {
        const projected = constrain(ctx, syn);
        if (projected !== syn) syn.assign(projected);
      });
    }
    const [maxAbs, bad] = tf.tidy(() => [tf.max(tf.abs(syn)), tf.any(tf.logicalNot(tf.isFinite(syn)))]).map((t) => {
      const v = t.dataSync()[0];
      t.dispose();
      return v;
    });
    if (bad || !(maxAbs <= EXPLOSION_LIMIT)) {
      throw new Error(
        `${method.name}: the images diverged at iteration ${info.iteration} (step ${info.step}): ` +
          `${bad ? 'non-finite pixels' : `max |pixel| = ${maxAbs.toPrecision(3)} > ${EXPLOSION_LIMIT}`}; ` +
          `lower the image learning rate (now ${lr}) or the extra-loss weights`,
      );
    }
  } finally {
    value.dispose();
    tf.dispose([...Object.values(grads), ...Object.values(kept), ...owned]);
  }
  return out;
}
