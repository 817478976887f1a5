import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDatasetArtifact } from '../data/artifact.js';
import { intervalCheckpoints, loadTrainState, saveModel, saveSnapshot, snapshotDir, stepWithinEpoch } from '../nn/checkpoint.js';
import { fromNchw, limitPerClass } from '../nn/data.js';
import { dsaStrategyFor } from '../nn/dsa.js';
import { disposeTrainState, initTrainState, train, type TrainConfig } from '../nn/train.js';
import { buildModel } from '../nn/zoo.js';
import type { StageImpl } from './contract.js';
import type { TrainProtocol } from './protocol.js';
import { STAGE_VERSIONS } from './versions.js';

/**
 * Parameters of the `pretrain` stage (all of them go into its cache key). `decay_epoch` null/absent:
 * constant lr, as MTT's experts.
 */
export interface PretrainParams extends TrainProtocol {
  /** Train on the first N images of each class only; null/absent: the whole training set. */
  train_limit?: number | null;
  /** Keep the parameters after every epoch (`snapshots/epoch_<e>`, e = 0 is the initialisation): MTT experts. */
  snapshots: boolean;
}

export interface PretrainMeta {
  arch: ReturnType<typeof buildModel>['arch'];
  epochs: number;
  train_accuracy: number;
  test_accuracy: number;
  param_count: number;
  train_count: number;
  augment: 'none' | 'dsa';
  dsa_strategy: string | null;
  snapshots: number[];
  curves: { train_loss: number[]; train_accuracy: number[]; test_epochs: number[]; test_accuracy: number[] };
}

/** Seconds between checkpoints inside an epoch (METADD_CHECKPOINT_SECONDS overrides). */
export const PRETRAIN_CHECKPOINT_SECONDS = 60;

/**
 * Trains one network on the real training set and writes it in the pretrain layout (nn/checkpoint.ts).
 * Every epoch ends with a checkpoint in `scratchDir`, and long epochs get one every
 * PRETRAIN_CHECKPOINT_SECONDS, so a killed attempt resumes at the step it had saved and produces the same
 * bytes as an uninterrupted run (train.ts derives the randomness of every epoch and step from their
 * numbers). Snapshots accumulate in scratch too and move into the output at the end.
 */
export const pretrainStage: StageImpl<PretrainParams> = {
  kind: 'pretrain',
  version: STAGE_VERSIONS.pretrain,
  needsTensors: true,
  async run(ctx) {
    const p = ctx.params;
    const datasetView = ctx.inputs.dataset;
    if (!datasetView) throw new Error("pretrain: missing input 'dataset'");
    const ds = loadDatasetArtifact(datasetView.dir);
    const m = ds.meta;
    const trainSet = limitPerClass(fromNchw(ds.trainX, ds.trainY, [m.train_count, m.channels, m.height, m.width]), p.train_limit);
    const testSet = fromNchw(ds.testX, ds.testY, [m.test_count, m.channels, m.height, m.width]);
    const model = buildModel(p.arch, { channels: m.channels, height: m.height, width: m.width, classes: m.classes });
    const strategy = p.augment === 'dsa' ? dsaStrategyFor(m.name) : null;
    const cfg: TrainConfig = {
      epochs: p.epochs,
      lr: p.lr,
      momentum: p.momentum,
      weightDecay: p.weight_decay,
      batch: p.batch,
      decayEpoch: p.decay_epoch ?? null,
      augment: p.augment,
      dsa: strategy ? { strategy } : undefined,
      testEvery: p.test_every ?? 0,
      microBatch: p.micro_batch,
    };

    // The seed parameter separates runs that are otherwise identical (MTT's experts) even when the
    // executor derives ctx.rng from the spec's base seed alone.
    const rng = ctx.rng.child(`seed-${p.seed}`);
    const ckptDir = join(ctx.scratchDir, 'train');
    const snapRoot = join(ctx.scratchDir, 'out');
    const resumed = loadTrainState(ckptDir, model);
    let state = resumed?.state ?? initTrainState(model, rng.child('init'));
    if (resumed) {
      ctx.log(`resuming ${model.arch.name} at epoch ${state.epoch} of ${p.epochs}${stepWithinEpoch(state)}`);
    } else {
      rmSync(snapRoot, { recursive: true, force: true });
      if (p.snapshots) saveSnapshot(snapRoot, 0, model, state.params, state.bnState);
    }
    ctx.log(
      `pretrain ${model.arch.name} (${model.paramCount()} parameters) on ${trainSet.n} images, ${p.epochs} epochs, ` +
        `augment ${strategy ?? 'none'}`,
    );

    const steps = Math.ceil(trainSet.n / p.batch);
    const total = steps * p.epochs;
    // Every epoch ends with a checkpoint (snapshots need it); inside long epochs, one every interval.
    const checkpoints = intervalCheckpoints(ckptDir, model, PRETRAIN_CHECKPOINT_SECONDS);
    try {
      state = await train(model, trainSet, testSet, cfg, rng.child('train'), state, {
        signal: ctx.signal,
        onStep: (epoch, step, _steps, loss) => {
          ctx.progress.update((epoch - 1) * steps + step, total, `epoch ${epoch}/${p.epochs} loss ${loss.toFixed(4)}`);
        },
        afterStep: checkpoints.saveIfDue,
        onEpoch: (s) => {
          const e = s.epoch;
          ctx.track.metric('train_loss', s.curves.trainLoss[e - 1], e);
          ctx.track.metric('train_accuracy', s.curves.trainAccuracy[e - 1], e);
          if (s.curves.testEpochs.at(-1) === e) ctx.track.metric('test_accuracy', s.curves.testAccuracy.at(-1) ?? 0, e);
          if (p.snapshots) saveSnapshot(snapRoot, e, model, s.params, s.bnState);
          checkpoints.save(s);
        },
      });

      saveModel(ctx.outDir, model, state.params, state.bnState);
      const snaps: number[] = [];
      if (p.snapshots) {
        for (let e = 0; e <= p.epochs; e++) {
          if (!existsSync(snapshotDir(snapRoot, e))) throw new Error(`pretrain: snapshot of epoch ${e} is missing from ${snapRoot}`);
          snaps.push(e);
        }
        moveDir(join(snapRoot, 'snapshots'), join(ctx.outDir, 'snapshots'));
      }
      const c = state.curves;
      const meta: PretrainMeta = {
        arch: model.arch,
        epochs: p.epochs,
        train_accuracy: c.trainAccuracy.at(-1) ?? 0,
        test_accuracy: c.testAccuracy.at(-1) ?? 0,
        param_count: model.paramCount(),
        train_count: trainSet.n,
        augment: p.augment,
        dsa_strategy: strategy,
        snapshots: snaps,
        curves: { train_loss: c.trainLoss, train_accuracy: c.trainAccuracy, test_epochs: c.testEpochs, test_accuracy: c.testAccuracy },
      };
      writeFileSync(join(ctx.outDir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
      ctx.track.metric('final_test_accuracy', meta.test_accuracy, p.epochs);
      ctx.track.artifact('model.json');
      ctx.track.artifact('meta.json');
      ctx.progress.update(total, total, `test accuracy ${(meta.test_accuracy * 100).toFixed(2)}%`);
      ctx.log(`test accuracy ${(meta.test_accuracy * 100).toFixed(2)}% after ${p.epochs} epochs`);
    } finally {
      disposeTrainState(state);
    }
  },
};

/** rename, falling back to copy + delete when scratch and output live on different file systems. */
function moveDir(from: string, to: string): void {
  mkdirSync(join(to, '..'), { recursive: true });
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    cpSync(from, to, { recursive: true });
    rmSync(from, { recursive: true, force: true });
  }
}
