import { resolve } from 'node:path';
import { describeDatasetSource } from '../data/index.js';
import type { DatasetParams, DatasetSourceInfo } from '../data/types.js';
import type { CellSpec, DatasetFacts } from '../spec/resolve.js';

const cache = new Map<string, DatasetSourceInfo>();

function describe(ds: CellSpec['dataset'], dataRoot: string): DatasetSourceInfo {
  const params: DatasetParams = { ...ds, path: ds.path !== undefined ? resolve(dataRoot, ds.path) : undefined };
  const id = JSON.stringify(params);
  let info = cache.get(id);
  if (!info) {
    info = describeDatasetSource(params);
    cache.set(id, info);
  }
  return info;
}

/** For semantic validation: classes and the smallest class size, without decoding images. */
export function datasetFacts(ds: CellSpec['dataset'], dataRoot: string): DatasetFacts {
  const info = describe(ds, dataRoot);
  return { classes: info.classes, minPerClass: Math.min(...info.trainPerClass) };
}

/** The content digest that keys the dataset stage. */
export function datasetDigest(ds: CellSpec['dataset'], dataRoot: string): string {
  return describe(ds, dataRoot).digest;
}
