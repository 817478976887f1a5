import { copyFileSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageContext, StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { DATASET_FILES, loadDatasetArtifact } from '../data/artifact.js';
import { gatherImages, randomSubsetIndices } from '../distill/random.js';
import { IMAGE_SET_FILES, writeImageSet } from '../distill/image-set.js';
import { trackPixelStats } from '../distill/pixel-stats.js';
import { writeImageGrid } from '../report/png.js';
import { readLearnedState, readOptimizerState, writeLearnedState, writeOptimizerState } from '../distill/checkpoint.js';
import { checkpointIntervalMs } from '../util/checkpoint-interval.js';
import type { DistillMethod, LearnedState, OptimizerState } from '../distill/method.js';
import type { DistillResult } from '../distill/driver.js';
import { hashJson } from '../store/hash.js';
import { deriveSeed, type Rng } from '../util/rng.js';

export interface DistillParams {
  method: string;
  /** Absent for 'whole' (the registry's `realData` methods), whose set depends on neither. */
  ipc?: number;
  seed?: number;
  [key: string]: unknown;
}

/**
 * Where an iterative run keeps its final state, for a metadd stage to continue from: the pixel
 * optimiser's buffers (checkpoint.ts `writeOptimizerState`: `momentum.npy` for SGD, `adam_m.npy` and
 * `adam_v.npy` for Adam, and `optimizer.json`) and the method's learned variables (`learned_<name>.npy`).
 */
const STATE_DIR = 'state';

/** The state an iterative run left in its set's folder (`optimizerState` undefined when it left none). */
export function readContinuation(setDir: string): { optimizerState: OptimizerState | undefined; learned: Record<string, LearnedState> } {
  const dir = join(setDir, STATE_DIR);
  return { optimizerState: readOptimizerState(dir), learned: readLearnedState(dir) };
}

/** Writes what a later run needs to continue this one (`readContinuation`): optimiser buffers, learned variables. */
export function writeContinuation(outDir: string, result: DistillResult): void {
  writeOptimizerState(join(outDir, STATE_DIR), result.optimizerState, result.shape);
  if (Object.keys(result.learned).length > 0) writeLearnedState(join(outDir, STATE_DIR), result.learned);
}

/** The meta.json entries of a run's learned variables: all under `learned`, and those a method publishes (MTT's learned_lr). */
export function publishedLearned(method: Pick<DistillMethod, 'learned'>, result: Pick<DistillResult, 'learned'>): Record<string, unknown> {
  const out: Record<string, unknown> = { learned: Object.fromEntries(Object.entries(result.learned).map(([k, l]) => [k, Array.from(l.value)])) };
  for (const spec of method.learned ?? []) {
    const l = result.learned[spec.name];
    if (spec.meta && l) out[spec.meta] = l.value.length === 1 ? l.value[0] : Array.from(l.value);
  }
  return out;
}

/** Stage input name -> artifact directory: what `createMethod` reads a method's extra inputs from. */
export function inputDirs(inputs: StageContext['inputs']): Record<string, string> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.dir]));
}

/** Checkpoint an iterative run at most every this many seconds (a checkpoint never changes the result). */
const CHECKPOINT_SECONDS = 60;

/** The driver's checkpoint interval in the distill and metadd stages (`METADD_CHECKPOINT_SECONDS` overrides). */
export function driverCheckpointSeconds(): number {
  return checkpointIntervalMs(CHECKPOINT_SECONDS) / 1000;
}

async function runRandom(ctx: StageContext<DistillParams>): Promise<void> {
  const ipc = ctx.params.ipc;
  if (ipc === undefined) throw new Error("distill 'random': missing parameter 'ipc'");
  const ds = loadDatasetArtifact(ctx.inputs.dataset.dir);
  const { classes, channels, height, width } = ds.meta;
  const indices = randomSubsetIndices(ds.trainY, classes, ipc, ctx.rng);
  const images = gatherImages(ds.trainX, channels * height * width, indices);
  const labels = new Int32Array(indices.length);
  indices.forEach((idx, i) => (labels[i] = ds.trainY[idx]));
  // Its pixel statistics go to meta.json only: a metric record carries a wall-clock timestamp, and the
  // random subset's artifact is the same bytes wherever it runs (local workers, Slurm; tested).
  writeImageSet(
    ctx.outDir,
    {
      images,
      labels,
      shape: [indices.length, channels, height, width],
      meta: { method: 'random', ipc, classes, iterations: 0, source_indices: Array.from(indices) },
    },
    ds.meta,
  );
  ctx.track.param('method', 'random');
  ctx.track.param('ipc', ipc);
  ctx.track.artifact('grid.png');
  ctx.progress.update(1, 1);
}

/** Images per class in the preview grid of the whole training set. */
const WHOLE_GRID_PER_CLASS = 10;

/** A hard link where the file system allows one (the store never rewrites a file in place), else a copy. */
function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/**
 * The whole training set as an image set: the dataset artifact's training arrays have the image-set
 * format (float32 NCHW, normalised; int32 labels), so they are linked, not rewritten (60,000 MNIST
 * images are 188 MB).
 */
async function runWhole(ctx: StageContext<DistillParams>): Promise<void> {
  const ds = loadDatasetArtifact(ctx.inputs.dataset.dir);
  const { classes, channels, height, width, train_count } = ds.meta;
  linkOrCopy(join(ctx.inputs.dataset.dir, DATASET_FILES.trainX), join(ctx.outDir, IMAGE_SET_FILES.images));
  linkOrCopy(join(ctx.inputs.dataset.dir, DATASET_FILES.trainY), join(ctx.outDir, IMAGE_SET_FILES.labels));
  const perClass = Math.min(WHOLE_GRID_PER_CLASS, ...Array.from({ length: classes }, (_, c) => ds.trainY.filter((y) => y === c).length));
  const firsts = new Int32Array(classes * perClass);
  const taken = new Array<number>(classes).fill(0);
  ds.trainY.forEach((y, i) => {
    if (taken[y] < perClass) firsts[y * perClass + taken[y]++] = i;
  });
  const preview = gatherImages(ds.trainX, channels * height * width, firsts);
  writeImageGrid(join(ctx.outDir, 'grid.png'), preview, [firsts.length, channels, height, width], {
    mean: ds.meta.mean,
    std: ds.meta.std,
    labels: Int32Array.from(firsts, (i) => ds.trainY[i]),
  });
  writeFileSync(
    join(ctx.outDir, IMAGE_SET_FILES.meta),
    `${JSON.stringify({ method: 'whole', classes, images: train_count, iterations: 0, grid: `first ${perClass} training images of each class` }, null, 2)}\n`,
  );
  ctx.track.param('method', 'whole');
  ctx.track.param('images', train_count);
  ctx.track.artifact('grid.png');
  ctx.progress.update(1, 1);
}

/**
 * The seed material of an iterative run: the stage's parameters except the iteration budget, and the
 * dataset. Leaving the budget out makes a run of T + K iterations repeat a run of T exactly for its
 * first T iterations, so a metadd control arm (T, then K more) gives the bytes of a base run of T + K.
 * Written to the set's meta.json (`run_seed`) for the metadd stage to continue the same stream.
 */
export function runSeedFor(params: Record<string, unknown>, datasetKey: string): string {
  const { iterations: _budget, ...rest } = params;
  return deriveSeed('distill-run', hashJson(rest), datasetKey);
}

/** The seed material of a run that has none of its own (a metadd stage on a random subset). */
export function drawRunSeed(rng: Rng): string {
  const r = rng.child('run-seed');
  return deriveSeed(r.seed(), r.seed(), r.seed(), r.seed());
}

async function runIterative(ctx: StageContext<DistillParams>): Promise<void> {
  // Loaded here so that the random baseline never pulls in TensorFlow.js.
  const { runDistillation } = await import('../distill/driver.js');
  const { createMethod } = await import('../distill/methods.js');
  const { makeRealData } = await import('../distill/real-data.js');
  const ds = loadDatasetArtifact(ctx.inputs.dataset.dir);
  const m = ds.meta;
  const { seed, ...keyParams } = ctx.params;
  const params = keyParams as unknown as import('../distill/methods.js').IterativeParams;
  const method = createMethod(params, m.name, inputDirs(ctx.inputs));
  const real = makeRealData(ds.trainX, ds.trainY, m);
  const runSeed = runSeedFor(ctx.params, ctx.inputs.dataset.key);
  const mctx = { real, ipc: params.ipc, log: (s: string) => ctx.log(s) };
  ctx.track.param('method', params.method);
  ctx.track.param('ipc', params.ipc);
  ctx.track.param('iterations', params.iterations);
  if (seed !== undefined) ctx.track.param('seed', seed);
  const opt = method.optimizer;
  ctx.log(`${params.method}: ${m.classes} classes x ${params.ipc} images, ${params.iterations} iterations, image ${opt.kind} lr ${opt.lr}`);
  const result = await runDistillation(method, mctx, {
    end: params.iterations,
    runSeed,
    checkpoint: { dir: join(ctx.scratchDir, 'driver'), seconds: driverCheckpointSeconds(), fingerprint: hashJson({ params: ctx.params, runSeed }) },
    track: ctx.track,
    progress: ctx.progress,
    signal: ctx.signal,
  });
  const learnedMeta = publishedLearned(method, result);
  for (const [k, v] of Object.entries(learnedMeta)) if (typeof v === 'number') ctx.track.param(k, v);
  const pixels = writeImageSet(
    ctx.outDir,
    {
      images: result.images,
      labels: result.labels,
      shape: result.shape,
      meta: {
        method: params.method,
        ipc: params.ipc,
        classes: m.classes,
        iterations: result.end,
        run_seed: runSeed,
        image_lr: opt.lr,
        momentum: opt.kind === 'sgd' ? opt.momentum : null,
        optimizer: opt,
        ...learnedMeta,
        final_loss: result.lastTerms.loss ?? null,
        seconds_per_iteration: result.secondsPerIteration,
        cpu_seconds_per_iteration: result.cpuSecondsPerIteration,
        // The worker process runs this one stage: its peak RSS is the stage's (bench/methods.ts reads it).
        peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      },
    },
    m,
  );
  writeContinuation(ctx.outDir, result);
  trackPixelStats(ctx.track, pixels, result.end);
  ctx.track.metric('seconds_per_iteration', result.secondsPerIteration, result.end);
  ctx.track.metric('cpu_seconds_per_iteration', result.cpuSecondsPerIteration, result.end);
  ctx.track.artifact('grid.png');
  ctx.log(`done: ${result.secondsPerIteration.toFixed(3)} s per iteration`);
}

export const distillStage: StageImpl<DistillParams> = {
  kind: 'distill',
  version: STAGE_VERSIONS.distill,
  // Per method: the DAG node's needsTensors (registry.ts) is what the worker reads.
  needsTensors: false,
  async run(ctx) {
    if (ctx.params.method === 'random') return runRandom(ctx);
    if (ctx.params.method === 'whole') return runWhole(ctx);
    if (['dm', 'dc', 'dsa', 'mtt', 'sre2l'].includes(ctx.params.method)) return runIterative(ctx);
    throw new Error(`distillation method '${ctx.params.method}' is not implemented`);
  },
};
