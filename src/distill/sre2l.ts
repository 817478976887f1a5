import * as tf from '@tensorflow/tfjs-core';
import { inputMismatch, loadModel, type LoadedModel } from '../nn/checkpoint.js';
import { dsaStrategyFor, parseStrategy } from '../nn/dsa.js';
import { crossEntropy } from '../nn/losses.js';
import type { BnBatchStats, BnState, Model } from '../nn/types.js';
import { initialSet, type InitKind } from './init.js';
import type { DistillMethod, MethodContext } from './method.js';
import { clampToRealRange } from './pixel-range.js';

/** Resolved SRe2L recover parameters (what the cache key holds; see registry.ts). */
export interface Sre2lConfig {
  /** Adam on the pixels (reference: lr 0.25, betas (0.5, 0.9), eps 1e-8, cosine schedule without warm-up). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  schedule: 'constant' | 'cosine';
  /** Weight of the batch-norm statistics term (reference CIFAR script: 0.01). */
  rBn: number;
  /** Extra weight of the first batch-norm layer's term (reference 10). */
  firstBnMultiplier: number;
  /** Largest cyclic shift in pixels, drawn in [0, jitter] per axis and step (reference CIFAR: 4). */
  jitter: number;
  /** Random horizontal flip (p 0.5) per step, where the dataset's DSA strategy allows flips. */
  flip: boolean;
  init: InitKind;
  /** Dataset name: digits (MNIST, Fashion-MNIST) are never flipped, as in the DSA strategies. */
  dataset: string;
  /** The squeezed teacher: frozen, with batch norm. The caller owns its tensors. */
  teacher: LoadedModel;
}

/** One step's random view of the set: a cyclic shift (torch.roll) and an optional horizontal flip. */
interface Sre2lPrepared {
  shiftH: number;
  shiftW: number;
  flip: boolean;
}

/** Floor under the squared norm: the gradient of sqrt at 0 is infinite (PyTorch returns 0 there). */
const NORM_FLOOR = 1e-24;

function l2(x: tf.Tensor): tf.Scalar {
  return tf.sqrt(tf.maximum(tf.sum(tf.square(x)), NORM_FLOOR)) as tf.Scalar;
}

/** The batch-norm layers of a model in declaration order (the forward order of every zoo network). */
export function bnLayers(model: Model): string[] {
  return model.bnSpecs.filter((s) => s.name.endsWith('.running_mean')).map((s) => s.name.slice(0, -'.running_mean'.length));
}

/**
 * SRe2L's statistics prior: sum over batch-norm layers l of
 *   w_l * ( ||mu_l(x) - running_mean_l||_2 + ||var_l(x) - running_var_l||_2 ),
 * with mu_l and var_l the per-channel mean and biased variance of layer l's input over the batch
 * (N, H, W), w_0 = `firstMultiplier` for the first layer and 1 for the others (reference BNFeatureHook:
 * Euclidean norms, not squared). Differentiable w.r.t. the batch statistics.
 */
export function bnStatisticsLoss(stats: Record<string, BnBatchStats>, bnState: BnState, layers: readonly string[], firstMultiplier: number): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    layers.forEach((layer, i) => {
      const s = stats[layer];
      const rm = bnState[`${layer}.running_mean`];
      const rv = bnState[`${layer}.running_var`];
      if (!s) throw new Error(`SRe2L: batch-norm layer ${layer} reported no batch statistics`);
      if (!rm || !rv) throw new Error(`SRe2L: batch-norm layer ${layer} has no running statistics`);
      const term = tf.add(l2(tf.sub(s.mean, rm)), l2(tf.sub(s.variance, rv)));
      total = tf.add(total, i === 0 ? tf.mul(term, firstMultiplier) : term);
    });
    return total;
  });
}

/** torch.roll(x, (dh, dw), dims=(H, W)) on NHWC images: out[i] = x[(i - shift) mod size]. */
export function roll2d(x: tf.Tensor4D, shiftH: number, shiftW: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  const along = (t: tf.Tensor4D, axis: 1 | 2, size: number, shift: number): tf.Tensor4D => {
    const s = ((shift % size) + size) % size;
    if (s === 0) return t;
    const begin = (at: number): number[] => (axis === 1 ? [0, at, 0, 0] : [0, 0, at, 0]);
    const len = (n: number): number[] => (axis === 1 ? [-1, n, -1, -1] : [-1, -1, n, -1]);
    return tf.concat([tf.slice(t, begin(size - s), len(s)), tf.slice(t, begin(0), len(size - s))], axis);
  };
  return along(along(x, 1, h, shiftH), 2, w, shiftW);
}

/**
 * The recover loss of a batch: CE(teacher(x_view), y) + r_bn * bnStatisticsLoss, the teacher in
 * evaluation mode (normalising with its running statistics, as the reference's `model_teacher.eval()`)
 * while every batch-norm layer records the statistics of its input batch.
 */
export function recoverLoss(
  teacher: LoadedModel,
  layers: readonly string[],
  x: tf.Tensor4D,
  labels: tf.Tensor1D,
  rBn: number,
  firstBnMultiplier: number,
): { total: tf.Scalar; ce: tf.Scalar; bn: tf.Scalar } {
  const stats: Record<string, BnBatchStats> = {};
  const logits = teacher.model.forward(teacher.params, x, { training: false, bnState: teacher.bnState, bnStats: stats });
  const ce = crossEntropy(logits, labels);
  const bn = bnStatisticsLoss(stats, teacher.bnState, layers, firstBnMultiplier);
  return { total: tf.add(ce, tf.mul(bn, rBn)) as tf.Scalar, ce, bn };
}

function checkTeacher(ctx: MethodContext, teacher: LoadedModel): void {
  const mismatch = inputMismatch(teacher.model, ctx.real);
  if (mismatch) throw new Error(`sre2l: the teacher ${mismatch}`);
  if (teacher.model.bnSpecs.length === 0) {
    throw new Error(`sre2l: the teacher ${JSON.stringify(teacher.model.arch)} has no batch norm; set distill.sre2l.teacher.arch.norm to 'batch'`);
  }
}

/**
 * SRe2L's recover step (Yin, Xing & Shen, NeurIPS 2023; reference recover_cifar.py / data_synthesis.py):
 * the images are optimised so that the frozen, squeezed teacher classifies a randomly shifted (and, where
 * the dataset allows, flipped) view of them as their class while the statistics of every batch-norm
 * layer's input match the running statistics the teacher learned on real data. Adam with a cosine
 * schedule on the pixels. The reference recovers each batch of `batch_size` images with its own
 * `iteration` steps; here the whole set (classes x ipc) is one batch recovered for `iterations` steps, the
 * same thing when the batch is the set (docs/methods.md). One jitter/flip draw per step for the whole
 * batch, as torch.roll and a batch-level RandomHorizontalFlip do in the reference.
 */
export function createSre2l(cfg: Sre2lConfig): DistillMethod<null, Sre2lPrepared> {
  const layers = bnLayers(cfg.teacher.model);
  const flips = cfg.flip && parseStrategy(dsaStrategyFor(cfg.dataset)).includes('flip');
  let checked = false;
  return {
    name: 'sre2l',
    optimizer: { kind: 'adam', lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, schedule: cfg.schedule },
    stepsPerIteration: 1,
    init(ctx, rng) {
      checkTeacher(ctx, cfg.teacher);
      checked = true;
      return initialSet(ctx, cfg.init, rng);
    },
    beginIteration(ctx) {
      if (!checked) checkTeacher(ctx, cfg.teacher);
      checked = true;
      return null;
    },
    prepare(_ctx, _state, _info, rng) {
      return {
        shiftH: rng.child('jitter-h').int(cfg.jitter + 1),
        shiftW: rng.child('jitter-w').int(cfg.jitter + 1),
        flip: flips && rng.child('flip').next() < 0.5,
      };
    },
    loss(_ctx, _state, prepared, syn, labels) {
      const view = prepared.flip ? (tf.reverse(syn, 2) as tf.Tensor4D) : syn;
      const jittered = roll2d(view, prepared.shiftH, prepared.shiftW);
      return recoverLoss(cfg.teacher, layers, jittered, tf.tensor1d(labels, 'int32'), cfg.rBn, cfg.firstBnMultiplier).total;
    },
    endIteration() {
      // The teacher is frozen and belongs to the caller: nothing is allocated per iteration.
    },
    constrain(ctx, syn) {
      // The reference clips every channel to the range of real pixels after each step.
      return clampToRealRange(ctx.real, syn);
    },
  };
}

/** The distill stage's SRe2L parameters (registry.ts `sre2lKey`, less the seed). */
export interface Sre2lParams {
  method: 'sre2l';
  ipc: number;
  iterations: number;
  lr_img: number;
  beta1: number;
  beta2: number;
  eps: number;
  schedule: 'constant' | 'cosine';
  r_bn: number;
  first_bn_multiplier: number;
  jitter: number;
  flip: boolean;
  init: InitKind;
}

/**
 * SRe2L for a distill or metadd stage: the teacher is the stage input `teacher` (a pretrain artifact),
 * loaded here and kept for the life of the process (the stage's worker), which is the method's.
 */
export function sre2lFromParams(p: Sre2lParams, dataset: string, inputs: Record<string, string>): DistillMethod<null, Sre2lPrepared> {
  const dir = inputs.teacher;
  if (!dir) throw new Error("sre2l: the stage has no input 'teacher' (the squeezed network, a pretrain artifact)");
  return createSre2l({
    lr: p.lr_img,
    beta1: p.beta1,
    beta2: p.beta2,
    eps: p.eps,
    schedule: p.schedule,
    rBn: p.r_bn,
    firstBnMultiplier: p.first_bn_multiplier,
    jitter: p.jitter,
    flip: p.flip,
    init: p.init,
    dataset,
    teacher: loadModel(dir),
  });
}
