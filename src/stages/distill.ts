import type { StageContext, StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { loadDatasetArtifact } from '../data/artifact.js';
import { gatherImages, randomSubsetIndices } from '../distill/random.js';
import { writeImageSet } from '../distill/image-set.js';

export interface DistillParams {
  method: string;
  ipc: number;
  seed: number;
  [key: string]: unknown;
}

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

export const distillStage: StageImpl<DistillParams> = {
  kind: 'distill',
  version: STAGE_VERSIONS.distill,
  needsTensors: false,
  async run(ctx) {
    if (ctx.params.method === 'random') return runRandom(ctx);
    throw new Error(`distillation method '${ctx.params.method}' is not implemented`);
  },
};
