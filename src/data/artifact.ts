import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy, writeNpy, type NpyArray } from '../store/npy.js';

/** `meta.json` of a dataset artifact (docs/artifacts.md); the last five fields are metadd extras. */
export interface DatasetMeta {
  name: string;
  classes: number;
  class_names: string[];
  channels: number;
  height: number;
  width: number;
  mean: number[];
  std: number[];
  train_count: number;
  test_count: number;
  digest: string;
  /** `reference`: published constants; `computed`: from the full training split of the source. */
  stats_source?: 'reference' | 'computed';
  train_per_class?: number[];
  test_per_class?: number[];
  train_limit?: number | null;
  test_limit?: number | null;
  /** Whitened after normalisation (`dataset.zca`): pixels no longer lie in the range mean/std give. */
  zca?: { eps: number } | null;
}

/** A dataset artifact in memory: normalised NCHW float32 images and int32 labels. */
export interface DatasetArtifact {
  trainX: Float32Array;
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
  meta: DatasetMeta;
}

export const DATASET_FILES = {
  trainX: 'train_x.npy',
  trainY: 'train_y.npy',
  testX: 'test_x.npy',
  testY: 'test_y.npy',
  meta: 'meta.json',
} as const;

/** Write the four arrays and meta.json into `dir` (an artifact output directory). */
export function writeDatasetArtifact(dir: string, a: DatasetArtifact): void {
  const { channels: c, height: h, width: w } = a.meta;
  writeNpy(join(dir, DATASET_FILES.trainX), a.trainX, [a.trainY.length, c, h, w]);
  writeNpy(join(dir, DATASET_FILES.trainY), a.trainY, [a.trainY.length]);
  writeNpy(join(dir, DATASET_FILES.testX), a.testX, [a.testY.length, c, h, w]);
  writeNpy(join(dir, DATASET_FILES.testY), a.testY, [a.testY.length]);
  writeFileSync(join(dir, DATASET_FILES.meta), JSON.stringify(a.meta, null, 2) + '\n');
}

function expectArray(arr: NpyArray, file: string, dtype: 'float32' | 'int32', shape: number[]): void {
  if (arr.dtype !== dtype || arr.shape.join() !== shape.join()) {
    throw new Error(`${file}: ${arr.dtype} [${arr.shape.join(', ')}], expected ${dtype} [${shape.join(', ')}] from meta.json`);
  }
}

/** Read a dataset artifact written by the `dataset` stage, checking every array against meta.json. */
export function loadDatasetArtifact(dir: string): DatasetArtifact {
  const metaFile = join(dir, DATASET_FILES.meta);
  let meta: DatasetMeta;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as DatasetMeta;
  } catch (err) {
    throw new Error(`${metaFile}: cannot read the dataset metadata (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  for (const key of ['classes', 'channels', 'height', 'width', 'train_count', 'test_count'] as const) {
    if (!Number.isInteger(meta[key])) throw new Error(`${metaFile}: '${key}' is ${JSON.stringify(meta[key])}, expected an integer`);
  }
  const { channels: c, height: h, width: w } = meta;
  const read = (name: string, dtype: 'float32' | 'int32', shape: number[]) => {
    const file = join(dir, name);
    const arr = readNpy(file);
    expectArray(arr, file, dtype, shape);
    return arr.data;
  };
  return {
    trainX: read(DATASET_FILES.trainX, 'float32', [meta.train_count, c, h, w]) as Float32Array,
    trainY: read(DATASET_FILES.trainY, 'int32', [meta.train_count]) as Int32Array,
    testX: read(DATASET_FILES.testX, 'float32', [meta.test_count, c, h, w]) as Float32Array,
    testY: read(DATASET_FILES.testY, 'int32', [meta.test_count]) as Int32Array,
    meta,
  };
}
