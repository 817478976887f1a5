import * as tf from '@tensorflow/tfjs-core';
import { applyDsa, drawDsa, dsaStrategyFor, type DsaTransform } from '../nn/dsa.js';
import type { ArchSpec, Model, Params } from '../nn/types.js';
import { initialSet, type InitKind } from './init.js';
import type { DistillMethod } from './method.js';
import { lazyModel } from './lazy-model.js';
import { realBatch, sampleClassIndices } from './real-data.js';

/** Resolved DM parameters (what the cache key holds; see registry.ts). */
export interface DmConfig {
  lr: number;
  momentum: number;
  batchReal: number;
  init: InitKind;
  arch: ArchSpec;
  dsa: boolean;
  /** Dataset name, for the reference's per-dataset DSA strategy (no flip for digits). */
  dataset: string;
}

interface DmState {
  model: Model;
  params: Params;
}

interface DmPrepared {
  /** [classes, D] mean embedding of each class's real batch. */
  realMeans: tf.Tensor2D;
  /** The siamese transformation of each class (null without DSA). */
  transforms: (DsaTransform | null)[];
}

/**
 * Distribution matching (Zhao & Bilen, WACV 2023; reference main_DM.py): every iteration a freshly
 * initialised network (never trained); per class, the real batch and the class's synthetic images go
 * through the same siamese DSA transformation, and the loss is
 *   sum_c || mean(embed(real_c)) - mean(embed(syn_c)) ||^2.
 * Networks with batch norm embed all classes in one batch, as the reference's ConvNetBN branch does.
 */
export function createDm(cfg: DmConfig): DistillMethod<DmState, DmPrepared> {
  const modelFor = lazyModel(cfg.arch);
  const strategy = dsaStrategyFor(cfg.dataset);
  return {
    name: 'dm',
    optimizer: { kind: 'sgd', lr: cfg.lr, momentum: cfg.momentum },
    stepsPerIteration: 1,
    init: (ctx, rng) => initialSet(ctx, cfg.init, rng),
    beginIteration(ctx, _iteration, rng) {
      const m = modelFor(ctx);
      return { model: m, params: m.init(rng.child('net')) };
    },
    prepare(ctx, state, _info, rng) {
      const { real } = ctx;
      const hasBn = state.model.bnSpecs.length > 0;
      const transforms: (DsaTransform | null)[] = [];
      const batches: tf.Tensor4D[] = [];
      const means: tf.Tensor1D[] = [];
      for (let c = 0; c < real.classes; c++) {
        const idx = sampleClassIndices(real, c, cfg.batchReal, rng.child(`real-${c}`));
        const t = cfg.dsa ? drawDsa(rng.child(`dsa-${c}`), idx.length, real.height, real.width, { strategy, siamese: true }) : null;
        transforms.push(t);
        const x = tf.tidy(() => {
          const b = realBatch(real, idx);
          return t ? applyDsa(b, t) : b;
        });
        if (hasBn) {
          batches.push(x);
        } else {
          // One class at a time bounds the activations to a single real batch.
          means.push(tf.tidy(() => tf.mean(state.model.embed(state.params, x, { training: true }), 0) as tf.Tensor1D));
          x.dispose();
        }
      }
      if (hasBn) {
        const sizes = batches.map((b) => b.shape[0]);
        const emb = state.model.embed(state.params, tf.concat(batches, 0), { training: true });
        let offset = 0;
        for (const size of sizes) {
          means.push(tf.mean(tf.slice(emb, [offset, 0], [size, -1]), 0) as tf.Tensor1D);
          offset += size;
        }
      }
      return { realMeans: tf.stack(means) as tf.Tensor2D, transforms };
    },
    loss(ctx, state, prepared, syn) {
      const { classes } = ctx.real;
      const ipc = ctx.ipc;
      const parts: tf.Tensor4D[] = [];
      for (let c = 0; c < classes; c++) {
        const block = tf.slice(syn, [c * ipc, 0, 0, 0], [ipc, -1, -1, -1]);
        const t = prepared.transforms[c];
        parts.push(t ? applyDsa(block, t) : block);
      }
      const emb = state.model.embed(state.params, tf.concat(parts, 0), { training: true });
      const synMeans = tf.mean(tf.reshape(emb, [classes, ipc, -1]), 1);
      return tf.sum(tf.square(tf.sub(prepared.realMeans, synMeans))) as tf.Scalar;
    },
    endIteration(state) {
      for (const t of Object.values(state.params)) t.dispose();
    },
  };
}
