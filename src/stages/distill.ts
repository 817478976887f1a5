import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StageContext, StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { loadDatasetArtifact } from '../data/artifact.js';
import { gatherImages, randomSubsetIndices } from '../distill/random.js';
import { writeImageSet } from '../distill/image-set.js';
import { writeNpy } from '../store/npy.js';
import { hashJson } from '../store/hash.js';
import { deriveSeed, type Rng } from '../util/rng.js';

export interface DistillParams {
  method: string;
  ipc: number;
  seed: number;
  [key: string]: unknown;
}

/** Where an iterative run keeps its final optimiser state, for a metadd stage to continue from. */
export const MOMENTUM_FILE = join('state', 'momentum.npy');

/** Checkpoint an iterative run at most every this many seconds (a checkpoint never changes the result). */
export const CHECKPOINT_SECONDS = 60;

async function runRandom(ctx: StageContext<DistillParams>): Promise<void> {
  const ds = loadDatasetArtifact(ctx.inputs.dataset.dir);
  const { classes, channels, height, width } = ds.meta;
  const indices = randomSubsetIndices(ds.trainY, classes, ctx.params.ipc, ctx.rng);
  const images = gatherImages(ds.trainX, channels * height * width, indices);
  const labels = new Int32Array(indices.length);
  indices.forEach((idx, i) => (labels[i] = ds.trainY[idx]));
  writeImageSet(
    ctx.outDir,
    {
      images,
      labels,
      shape: [indices.length, channels, height, width],
      meta: { method: 'random', ipc: ctx.params.ipc, classes, iterations: 0, source_indices: Array.from(indices) },
    },
    ds.meta,
  );
  ctx.track.param('method', 'random');
  ctx.track.param('ipc', ctx.params.ipc);
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
  const method = createMethod(params, m.name);
  const real = makeRealData(ds.trainX, ds.trainY, m);
  const runSeed = runSeedFor(ctx.params, ctx.inputs.dataset.key);
  const mctx = { real, ipc: params.ipc, log: (s: string) => ctx.log(s) };
  ctx.track.param('method', params.method);
  ctx.track.param('ipc', params.ipc);
  ctx.track.param('iterations', params.iterations);
  ctx.track.param('seed', seed);
  ctx.log(`${params.method}: ${m.classes} classes x ${params.ipc} images, ${params.iterations} iterations, image lr ${method.optimizer.lr}`);
  const result = await runDistillation(method, mctx, {
    end: params.iterations,
    runSeed,
    checkpoint: { dir: join(ctx.scratchDir, 'driver'), seconds: CHECKPOINT_SECONDS, fingerprint: hashJson({ params: ctx.params, runSeed }) },
    track: ctx.track,
    progress: ctx.progress,
    signal: ctx.signal,
  });
  writeImageSet(
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
        image_lr: method.optimizer.lr,
        momentum: method.optimizer.momentum,
        final_loss: result.lastTerms.loss ?? null,
        seconds_per_iteration: result.secondsPerIteration,
      },
    },
    m,
  );
  mkdirSync(join(ctx.outDir, 'state'), { recursive: true });
  writeNpy(join(ctx.outDir, MOMENTUM_FILE), result.momentum, result.shape);
  ctx.track.metric('seconds_per_iteration', result.secondsPerIteration, result.end);
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
    if (['dm', 'dc', 'dsa'].includes(ctx.params.method)) return runIterative(ctx);
    throw new Error(`distillation method '${ctx.params.method}' is not implemented`);
  },
};
