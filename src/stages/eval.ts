import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATASET_FILES, type DatasetMeta } from '../data/artifact.js';
import { inputMismatch, intervalCheckpoints, loadModel, loadTrainState, stepWithinEpoch, type LoadedModel } from '../nn/checkpoint.js';
import { fromNchw, type LabeledImages } from '../nn/data.js';
import { dsaStrategyFor } from '../nn/dsa.js';
import { disposeParams } from '../nn/sgd.js';
import { disposeTrainState, initTrainState, train, type KdTeacher, type TrainConfig } from '../nn/train.js';
import { buildModel } from '../nn/zoo.js';
import type { ArchSpec } from '../nn/types.js';
import { readNpy } from '../store/npy.js';
import type { StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import type { TrainProtocol } from './protocol.js';

/**
 * Parameters of the `eval` stage (all of them go into its cache key). `decay_epoch` null/absent:
 * floor(epochs / 2) + 1 (docs/models.md).
 */
export interface EvalParams extends TrainProtocol {
  /** Fresh networks trained on the image set. */
  models: number;
  /** 'final': accuracy after the last epoch (reference); 'best': the best epoch (reads the test set every epoch). */
  report_epoch: 'final' | 'best';
  /** Temperature for soft labels, when the image set has them (default 1). */
  temperature?: number;
  /**
   * SRe2L's relabel: train with knowledge distillation from the input `teacher` (a pretrain artifact),
   * which labels every augmented batch; absent/null: the set's own labels.
   */
  kd?: { temperature: number } | null;
  /**
   * MTT: train with the learning rate the set learned (its meta.json `learned_lr`), as the reference
   * evaluates its sets, instead of `lr`. An error when the set has none.
   */
  lr_from_set?: boolean;
}

/** `result.json` (docs/artifacts.md); `curves.test_epochs`, `dataset` and the rest are metadd extras. */
export interface EvalResult {
  arch: ArchSpec;
  /** Key of the evaluated image set. */
  set: string;
  dataset: string;
  accuracies: number[];
  mean: number;
  /** Population standard deviation (numpy's default, as the reference reports). */
  std: number;
  n: number;
  report_epoch: 'final' | 'best';
  /** The epoch each reported accuracy comes from (1-based). */
  epochs_reported: number[];
  soft_labels: boolean;
  /** The KD temperature when the students learned from a teacher's soft outputs (SRe2L), else null. */
  kd_temperature: number | null;
  /** The SGD learning rate the models trained with (the set's learned one when `lr_from_set`). */
  lr: number;
  dsa_strategy: string | null;
  curves: { test_accuracy: number[][]; test_epochs: number[][]; train_loss: number[][] };
}

interface ModelRecord {
  accuracy: number;
  epoch: number;
  testAccuracy: number[];
  testEpochs: number[];
  trainLoss: number[];
}

/** Reference default: lr x0.1 at "epoch E/2 + 1" (docs/models.md explains the off-by-one mapping). */
export function defaultDecayEpoch(epochs: number): number {
  return Math.floor(epochs / 2) + 1;
}

/**
 * The dataset artifact's meta.json and test split only: evaluation never reads the (large) training
 * arrays. Checked against meta.json like data/artifact.ts `loadDatasetArtifact` does.
 */
export function readTestSplit(dir: string): { meta: DatasetMeta; test: LabeledImages } {
  const metaFile = join(dir, DATASET_FILES.meta);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as DatasetMeta;
  for (const key of ['classes', 'channels', 'height', 'width', 'test_count'] as const) {
    if (!Number.isInteger(meta[key])) throw new Error(`${metaFile}: '${key}' is ${JSON.stringify(meta[key])}, expected an integer`);
  }
  const { channels: c, height: h, width: w, test_count: n } = meta;
  const x = readNpy(join(dir, DATASET_FILES.testX));
  const y = readNpy(join(dir, DATASET_FILES.testY));
  if (x.dtype !== 'float32' || x.shape.join() !== [n, c, h, w].join()) {
    throw new Error(`${join(dir, DATASET_FILES.testX)}: ${x.dtype} [${x.shape.join(', ')}], expected float32 [${[n, c, h, w].join(', ')}]`);
  }
  if (y.dtype !== 'int32' || y.shape.join() !== String(n)) {
    throw new Error(`${join(dir, DATASET_FILES.testY)}: ${y.dtype} [${y.shape.join(', ')}], expected int32 [${n}]`);
  }
  return { meta, test: fromNchw(x.data as Float32Array, y.data as Int32Array, [n, c, h, w]) };
}

/** Reads an image-set artifact (images.npy NCHW, labels.npy, optional soft_labels.npy). */
export function readImageSet(dir: string, expect: { channels: number; height: number; width: number; classes: number }): LabeledImages {
  const images = readNpy(join(dir, 'images.npy'));
  const labels = readNpy(join(dir, 'labels.npy'));
  const [n, c, h, w] = images.shape;
  if (images.dtype !== 'float32' || images.shape.length !== 4) {
    throw new Error(`${dir}/images.npy: ${images.dtype} [${images.shape.join(', ')}], expected float32 [N, C, H, W]`);
  }
  if (c !== expect.channels || h !== expect.height || w !== expect.width) {
    throw new Error(`${dir}/images.npy: images are ${c}x${h}x${w}, the dataset's are ${expect.channels}x${expect.height}x${expect.width}`);
  }
  if (labels.dtype !== 'int32' || labels.shape.join() !== String(n)) {
    throw new Error(`${dir}/labels.npy: ${labels.dtype} [${labels.shape.join(', ')}], expected int32 [${n}]`);
  }
  const y = labels.data as Int32Array;
  for (const v of y) if (v < 0 || v >= expect.classes) throw new Error(`${dir}/labels.npy: label ${v} outside 0..${expect.classes - 1}`);
  let soft: Float32Array | undefined;
  const softFile = join(dir, 'soft_labels.npy');
  if (existsSync(softFile)) {
    const s = readNpy(softFile);
    if (s.dtype !== 'float32' || s.shape.join() !== `${n},${expect.classes}`) {
      throw new Error(`${softFile}: ${s.dtype} [${s.shape.join(', ')}], expected float32 [${n}, ${expect.classes}]`);
    }
    soft = s.data as Float32Array;
  }
  return fromNchw(images.data as Float32Array, y, [n, c, h, w], soft);
}

function learnedLr(meta: Record<string, unknown>, dir: string): number {
  const v = meta.learned_lr;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new Error(`eval: lr_from_set needs a positive learned_lr in ${join(dir, 'meta.json')} (found ${JSON.stringify(v)}); only MTT sets learn one`);
  }
  return v;
}

/** Seconds between checkpoints of the model in training (METADD_CHECKPOINT_SECONDS overrides). */
export const EVAL_CHECKPOINT_SECONDS = 30;

/**
 * Trains `models` fresh networks on an image set and tests them on the real test set (the reference
 * evaluation protocol, REFERENCE section 2). Model i draws its initialisation and its training from
 * `ctx.rng.child('seed-<seed>').child('model-<i>')`. Finished models are recorded in scratch and the
 * model in training is checkpointed at most every EVAL_CHECKPOINT_SECONDS (at an epoch's end or inside
 * it), so a killed attempt resumes without changing the result.
 */
export const evalStage: StageImpl<EvalParams> = {
  kind: 'eval',
  version: STAGE_VERSIONS.eval,
  needsTensors: true,
  async run(ctx) {
    const p = ctx.params;
    const dsView = ctx.inputs.dataset;
    const setView = ctx.inputs.images;
    if (!dsView || !setView) throw new Error("eval: needs inputs 'dataset' and 'images'");
    const { meta: m, test: testSet } = readTestSplit(dsView.dir);
    const shape = { channels: m.channels, height: m.height, width: m.width, classes: m.classes };
    const trainSet = readImageSet(setView.dir, shape);
    const model = buildModel(p.arch, shape);
    const strategy = p.augment === 'dsa' ? dsaStrategyFor(m.name) : null;
    const best = p.report_epoch === 'best';
    const teacher = p.kd ? loadTeacher(ctx.inputs.teacher?.dir, shape) : null;
    const lr = p.lr_from_set ? learnedLr(setView.meta, setView.dir) : p.lr;
    const cfg: TrainConfig = {
      epochs: p.epochs,
      lr,
      momentum: p.momentum,
      weightDecay: p.weight_decay,
      batch: p.batch,
      decayEpoch: p.decay_epoch ?? defaultDecayEpoch(p.epochs),
      augment: p.augment,
      dsa: strategy ? { strategy } : undefined,
      temperature: p.temperature ?? 1,
      testEvery: best ? 1 : (p.test_every ?? 0),
      kd: teacher && p.kd ? kdTeacher(teacher, p.kd.temperature) : undefined,
      microBatch: p.micro_batch,
    };
    const labelling = teacher ? ` (KD from a ${teacher.model.arch.name} teacher, T = ${p.kd?.temperature})` : trainSet.soft ? ' (soft labels)' : '';
    ctx.log(
      `eval ${model.arch.name} on ${trainSet.n} images${labelling}: ${p.models} models x ` +
        `${p.epochs} epochs, lr ${lr}${p.lr_from_set ? ' (learned by the set)' : ''}, augment ${strategy ?? 'none'}, report ${p.report_epoch}`,
    );

    const doneFile = join(ctx.scratchDir, 'models.json');
    const done: ModelRecord[] = existsSync(doneFile) ? (JSON.parse(readFileSync(doneFile, 'utf8')) as ModelRecord[]) : [];
    const steps = Math.ceil(trainSet.n / p.batch);
    const total = p.models * p.epochs * steps;

    try {
      for (let i = done.length; i < p.models; i++) {
        // The seed parameter separates otherwise identical evaluations even when ctx.rng comes from the
        // spec's base seed alone.
        const rng = ctx.rng.child(`seed-${p.seed}`).child(`model-${i}`);
        const ckptDir = join(ctx.scratchDir, `model-${i}`);
        const resumed = loadTrainState(ckptDir, model);
        let state = resumed?.state ?? initTrainState(model, rng.child('init'));
        if (resumed) ctx.log(`model ${i}: resuming at epoch ${state.epoch}${stepWithinEpoch(state)}`);
        const checkpoints = intervalCheckpoints(ckptDir, model, EVAL_CHECKPOINT_SECONDS);
        try {
          state = await train(model, trainSet, testSet, cfg, rng.child('train'), state, {
            signal: ctx.signal,
            onStep: (epoch, step, _steps, loss) => {
              ctx.progress.update((i * p.epochs + epoch - 1) * steps + step, total, `model ${i + 1}/${p.models} epoch ${epoch} loss ${loss.toFixed(4)}`);
            },
            onEpoch: (s) => {
              const e = s.epoch;
              ctx.track.metric(`model_${i}/train_loss`, s.curves.trainLoss[e - 1], e);
              if (s.curves.testEpochs.at(-1) === e) ctx.track.metric(`model_${i}/test_accuracy`, s.curves.testAccuracy.at(-1) ?? 0, e);
              if (e < p.epochs) checkpoints.saveIfDue(s);
            },
            afterStep: checkpoints.saveIfDue,
          });
          const c = state.curves;
          let k = c.testAccuracy.length - 1;
          if (best) for (let j = 0; j < c.testAccuracy.length; j++) if (c.testAccuracy[j] > c.testAccuracy[k]) k = j;
          const rec: ModelRecord = {
            accuracy: c.testAccuracy[k],
            epoch: c.testEpochs[k],
            testAccuracy: c.testAccuracy,
            testEpochs: c.testEpochs,
            trainLoss: c.trainLoss,
          };
          done.push(rec);
          writeJsonAtomic(doneFile, done);
          ctx.track.metric('accuracy', rec.accuracy, i);
          ctx.log(`model ${i + 1}/${p.models}: test accuracy ${(rec.accuracy * 100).toFixed(2)}% (epoch ${rec.epoch})`);
        } finally {
          disposeTrainState(state);
        }
      }
    } finally {
      if (teacher) disposeParams(teacher.params, teacher.bnState);
    }

    const acc = done.map((r) => r.accuracy);
    const mean = acc.reduce((a, b) => a + b, 0) / acc.length;
    const std = Math.sqrt(acc.reduce((a, b) => a + (b - mean) ** 2, 0) / acc.length);
    const result: EvalResult = {
      arch: model.arch,
      set: setView.key,
      dataset: dsView.key,
      accuracies: acc,
      mean,
      std,
      n: acc.length,
      report_epoch: p.report_epoch,
      epochs_reported: done.map((r) => r.epoch),
      soft_labels: trainSet.soft !== undefined,
      kd_temperature: p.kd?.temperature ?? null,
      lr,
      dsa_strategy: strategy,
      curves: {
        test_accuracy: done.map((r) => r.testAccuracy),
        test_epochs: done.map((r) => r.testEpochs),
        train_loss: done.map((r) => r.trainLoss),
      },
    };
    writeFileSync(join(ctx.outDir, 'result.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(
      join(ctx.outDir, 'meta.json'),
      JSON.stringify({ arch: model.arch, set: setView.key, mean, std, n: acc.length, report_epoch: p.report_epoch }, null, 2) + '\n',
    );
    ctx.track.metric('accuracy_mean', mean);
    ctx.track.metric('accuracy_std', std);
    ctx.track.artifact('result.json');
    ctx.progress.update(total, total, `${(mean * 100).toFixed(2)} +- ${(std * 100).toFixed(2)}%`);
  },
};

/** The frozen teacher of a KD evaluation, checked against the dataset's shape. */
function loadTeacher(dir: string | undefined, shape: { channels: number; height: number; width: number; classes: number }): LoadedModel {
  if (!dir) throw new Error("eval: 'kd' is set but the stage has no input 'teacher' (a pretrain artifact)");
  const t = loadModel(dir);
  const mismatch = inputMismatch(t.model, shape);
  if (mismatch) {
    disposeParams(t.params, t.bnState);
    throw new Error(`eval: the teacher in ${dir} ${mismatch}`);
  }
  return t;
}

/** Evaluation-mode logits of the teacher (running batch-norm statistics), as SRe2L's relabel does. */
function kdTeacher(t: LoadedModel, temperature: number): KdTeacher {
  return { temperature, logits: (x) => t.model.forward(t.params, x, { training: false, bnState: t.bnState }) };
}

function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(value));
  renameSync(`${file}.tmp`, file);
}
