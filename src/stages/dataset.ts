import { join } from 'node:path';
import { writeDatasetArtifact, type DatasetMeta } from '../data/artifact.js';
import { loadDataset } from '../data/index.js';
import { normalizeInPlace } from '../data/normalize.js';
import type { DatasetParams } from '../data/types.js';
import { writeImageGrid } from '../report/png.js';
import type { StageImpl } from './contract.js';

export type { DatasetParams, DatasetSourceInfo, DatasetName } from '../data/types.js';
export { DATASET_NAMES } from '../data/types.js';
export { describeDatasetSource, loadDataset } from '../data/index.js';
export { loadDatasetArtifact, type DatasetArtifact, type DatasetMeta } from '../data/artifact.js';

/** Images per class in `samples.png`. */
const SAMPLES_PER_CLASS = 10;

/** Indices of the first `perClass` images of each class, in class order. */
function sampleIndices(labels: Int32Array, classes: number, perClass: number): number[] {
  const rows: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) if (rows[labels[i]].length < perClass) rows[labels[i]].push(i);
  return rows.flat();
}

/**
 * Loads a dataset source, normalises it and writes the artifact of docs/artifacts.md
 * (train_x/train_y/test_x/test_y .npy, meta.json) plus samples.png (first 10 training images of
 * each class, one row per class).
 */
export const datasetStage: StageImpl<DatasetParams> = {
  kind: 'dataset',
  version: 1,
  needsTensors: false,
  async run(ctx) {
    const p = ctx.params;
    ctx.progress.update(0, 3, `loading ${p.name}`);
    const d = await loadDataset(p, ctx.signal);
    ctx.log(
      `${p.name}: ${d.trainY.length} train / ${d.testY.length} test images, ${d.classes} classes, ` +
        `${d.channels}x${d.height}x${d.width}, ${d.statsSource} mean [${d.mean.map((v) => v.toFixed(4)).join(', ')}] std [${d.std.map((v) => v.toFixed(4)).join(', ')}]`,
    );
    ctx.signal.throwIfAborted();

    ctx.progress.update(1, 3, 'normalising');
    normalizeInPlace(d.trainX, d.channels, d.height, d.width, d);
    normalizeInPlace(d.testX, d.channels, d.height, d.width, d);
    if (p.zca) {
      ctx.progress.update(1, 3, `ZCA whitening (eps ${p.zca.eps})`);
      // Loaded here only: the other dataset stages need no tensor backend.
      const { applyZca, fitZca } = await import('../data/zca.js');
      const perImage = d.channels * d.height * d.width;
      const fit = fitZca(d.trainX, d.trainY.length, perImage, p.zca.eps);
      applyZca(d.trainX, d.trainY.length, perImage, fit);
      applyZca(d.testX, d.testY.length, perImage, fit);
    }

    ctx.progress.update(2, 3, 'writing');
    const meta: DatasetMeta = {
      name: p.name,
      classes: d.classes,
      class_names: d.classNames,
      channels: d.channels,
      height: d.height,
      width: d.width,
      mean: d.mean,
      std: d.std,
      train_count: d.trainY.length,
      test_count: d.testY.length,
      digest: d.digest,
      stats_source: d.statsSource,
      train_per_class: d.trainPerClass,
      test_per_class: d.testPerClass,
      train_limit: p.train_limit ?? null,
      test_limit: p.test_limit ?? null,
      ...(p.zca ? { zca: { eps: p.zca.eps } } : {}),
    };
    writeDatasetArtifact(ctx.outDir, { trainX: d.trainX, trainY: d.trainY, testX: d.testX, testY: d.testY, meta });

    const idx = sampleIndices(d.trainY, d.classes, SAMPLES_PER_CLASS);
    const perImage = d.channels * d.height * d.width;
    const samples = new Float32Array(idx.length * perImage);
    idx.forEach((i, k) => samples.set(d.trainX.subarray(i * perImage, (i + 1) * perImage), k * perImage));
    writeImageGrid(join(ctx.outDir, 'samples.png'), samples, [idx.length, d.channels, d.height, d.width], {
      mean: d.mean,
      std: d.std,
      labels: idx.map((i) => d.trainY[i]),
      classes: d.classes,
      cols: SAMPLES_PER_CLASS,
      // Small images (MNIST, CIFAR) are hard to see at 1:1.
      scale: d.height <= 32 ? 2 : 1,
    });

    ctx.track.param('dataset.name', p.name);
    ctx.track.param('dataset.classes', d.classes);
    ctx.track.param('dataset.train_count', d.trainY.length);
    ctx.track.param('dataset.test_count', d.testY.length);
    ctx.track.param('dataset.train_limit', p.train_limit ?? 'none');
    ctx.track.param('dataset.test_limit', p.test_limit ?? 'none');
    if (p.zca) ctx.track.param('dataset.zca_eps', p.zca.eps);
    ctx.track.param('dataset.shape', `${d.channels}x${d.height}x${d.width}`);
    ctx.track.param('dataset.digest', d.digest);
    ctx.track.tag('metadd.dataset', p.name);
    ctx.track.artifact('meta.json');
    ctx.track.artifact('samples.png');
    ctx.progress.update(3, 3, 'done');
  },
};
