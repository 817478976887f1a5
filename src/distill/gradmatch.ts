import * as tf from '@tensorflow/tfjs-core';
import { fromNchw } from '../nn/data.js';
import { applyDsa, drawDsa, dsaStrategyFor, type DsaTransform } from '../nn/dsa.js';
import { updateBnState } from '../nn/layers.js';
import { crossEntropy } from '../nn/losses.js';
import { loadTrainState, saveTrainState } from '../nn/checkpoint.js';
import { disposeTrainState, initTrainState, train, type TrainState } from '../nn/train.js';
import type { ArchSpec, BnBatchStats, BnState, Model, Params } from '../nn/types.js';
import type { Rng } from '../util/rng.js';
import { rowChunks } from './chunks.js';
import { initialSet, type InitKind } from './init.js';
import { tensorToNchw } from './layout.js';
import { matchDistance } from './match.js';
import type { DistillMethod, MethodContext } from './method.js';
import { lazyModel } from './lazy-model.js';
import { realBatch, sampleClassIndices } from './real-data.js';

/** Images per class of the real batch that sets the frozen batch-norm statistics (reference BNSizePC). */
const BN_BATCH_PER_CLASS = 16;

/** Resolved DC / DSA parameters (registry.ts). */
export interface GradMatchConfig {
  variant: 'dc' | 'dsa';
  lr: number;
  momentum: number;
  batchReal: number;
  init: InitKind;
  arch: ArchSpec;
  outerLoop: number;
  innerLoop: number;
  lrNet: number;
  momentumNet: number;
  batchTrain: number;
  dataset: string;
}

interface GmState {
  model: Model;
  train: TrainState;
  /** Parameters whose gradients are matched (at least two dimensions), in canonical order. */
  matched: string[];
}

interface GmPrepared {
  /** Per class, the real-batch gradients of the matched parameters. */
  gReal: tf.Tensor[][];
  transforms: (DsaTransform | null)[];
}

/**
 * Gradient matching (DC: Zhao, Mopuri & Bilen, ICLR 2021; DSA: Zhao & Bilen, ICML 2021; reference
 * main.py). Each iteration starts a fresh network; each of its `outerLoop` image updates minimises, per
 * class, the "ours" distance between the gradients of the cross-entropy on a real batch and on the
 * class's synthetic images (the latter differentiated again w.r.t. the pixels: a second-order
 * gradient). Between image updates the network trains `innerLoop` epochs on the synthetic set. DSA
 * applies one siamese transformation per class to both batches and augments the inner-loop training.
 */
export function createGradientMatching(cfg: GradMatchConfig): DistillMethod<GmState, GmPrepared> {
  const modelFor = lazyModel(cfg.arch);
  const strategy = dsaStrategyFor(cfg.dataset);
  const useDsa = cfg.variant === 'dsa';

  const classGradients = (state: GmState, x: tf.Tensor4D, c: number, bnState: BnState | undefined): tf.Tensor[] => {
    const m = state.model;
    const p = state.train.params;
    const labels = tf.fill([x.shape[0]], c, 'int32') as tf.Tensor1D;
    const f = (...ps: tf.Tensor[]): tf.Scalar => {
      const params: Params = { ...p };
      state.matched.forEach((name, i) => (params[name] = ps[i]));
      const logits = m.forward(params, x, bnState ? { training: false, bnState } : { training: true });
      return crossEntropy(logits, labels);
    };
    return tf.grads(f)(state.matched.map((n) => p[n]));
  };

  /** The "ours" distance of class c: its synthetic images' gradients against the real batch's. */
  const classLoss = (state: GmState, prepared: GmPrepared, block: tf.Tensor4D, c: number): tf.Scalar => {
    const bn = state.model.bnSpecs.length > 0 ? state.train.bnState : undefined;
    const t = prepared.transforms[c];
    return matchDistance(classGradients(state, t ? applyDsa(block, t) : block, c, bn), prepared.gReal[c]);
  };

  return {
    name: cfg.variant,
    optimizer: { kind: 'sgd', lr: cfg.lr, momentum: cfg.momentum },
    stepsPerIteration: cfg.outerLoop,
    init: (ctx, rng) => initialSet(ctx, cfg.init, rng),
    beginIteration(ctx, _iteration, rng) {
      const m = modelFor(ctx);
      return { model: m, train: initTrainState(m, rng.child('net')), matched: matchedParams(m) };
    },
    prepare(ctx, state, _info, rng) {
      const { real } = ctx;
      if (state.model.bnSpecs.length > 0) freezeBatchNorm(ctx, state, rng.child('bn'));
      const bn = state.model.bnSpecs.length > 0 ? state.train.bnState : undefined;
      const gReal: tf.Tensor[][] = [];
      const transforms: (DsaTransform | null)[] = [];
      for (let c = 0; c < real.classes; c++) {
        const idx = sampleClassIndices(real, c, cfg.batchReal, rng.child(`real-${c}`));
        const t = useDsa ? drawDsa(rng.child(`dsa-${c}`), idx.length, real.height, real.width, { strategy, siamese: true }) : null;
        transforms.push(t);
        gReal.push(
          tf.tidy(() => {
            const b = realBatch(real, idx);
            return classGradients(state, t ? applyDsa(b, t) : b, c, bn);
          }),
        );
      }
      return { gReal, transforms };
    },
    loss(ctx, state, prepared, syn) {
      const ipc = ctx.ipc;
      let total: tf.Scalar = tf.scalar(0);
      for (let c = 0; c < ctx.real.classes; c++) {
        total = tf.add(total, classLoss(state, prepared, tf.slice(syn, [c * ipc, 0, 0, 0], [ipc, -1, -1, -1]), c));
      }
      return total;
    },
    // Each class's term reads only that class's images: the set is class-major, ipc rows per class.
    blocks: {
      rows: (ctx) => rowChunks(ctx.real.classes * ctx.ipc, ctx.ipc),
      loss: (_ctx, state, prepared, block, c) => classLoss(state, prepared, block, c),
    },
    async afterStep(ctx, state, syn, labels, info, rng) {
      // The reference updates the network between image updates, not after the last one.
      if (info.step === cfg.outerLoop - 1 || cfg.innerLoop === 0) return;
      const { channels: ch, height: h, width: w } = ctx.real;
      const set = fromNchw(tensorToNchw(syn), labels, [labels.length, ch, h, w]);
      state.train = await train(
        state.model,
        set,
        null,
        {
          epochs: state.train.epoch + cfg.innerLoop,
          lr: cfg.lrNet,
          momentum: cfg.momentumNet,
          weightDecay: 0,
          batch: cfg.batchTrain,
          decayEpoch: null,
          augment: useDsa ? 'dsa' : 'none',
          dsa: useDsa ? { strategy } : undefined,
        },
        rng,
        state.train,
      );
    },
    endIteration(state) {
      disposeTrainState(state.train);
    },
    // The network trained between image updates is the whole iteration state: its weights, momentum
    // and batch-norm statistics as float32 files, read back to the bit.
    iterationState: {
      save: (_ctx, state, dir) => saveTrainState(dir, state.model, state.train),
      load(ctx, iteration, dir) {
        const m = modelFor(ctx);
        const loaded = loadTrainState(dir, m);
        if (!loaded) throw new Error(`${cfg.variant}: no network state in ${dir} to resume iteration ${iteration + 1} from`);
        return { model: m, train: loaded.state, matched: matchedParams(m) };
      },
    },
  };
}

/** The parameters whose gradients are matched: those with at least two dimensions, in canonical order. */
function matchedParams(m: Model): string[] {
  return m.paramSpecs.filter((s) => s.shape.length >= 2).map((s) => s.name);
}

/**
 * Batch norm with one synthetic image per class has no usable batch statistics: like the reference,
 * run a real batch (16 per class) in training mode to update the running statistics, then use them
 * frozen (evaluation mode) for both the real and the synthetic gradients of this image update.
 */
function freezeBatchNorm(ctx: MethodContext, state: GmState, rng: Rng): void {
  const { real } = ctx;
  const idx: number[] = [];
  for (let c = 0; c < real.classes; c++) idx.push(...sampleClassIndices(real, c, BN_BATCH_PER_CLASS, rng.child(`class-${c}`)));
  const next = tf.tidy(() => {
    const stats: Record<string, BnBatchStats> = {};
    state.model.forward(state.train.params, realBatch(real, idx), { training: true, bnStats: stats });
    return updateBnState(state.train.bnState, stats);
  });
  for (const t of Object.values(next)) tf.keep(t);
  tf.dispose(Object.values(state.train.bnState));
  state.train.bnState = next;
}
