import { dirname, join } from 'node:path';
import { decodeNpy, type NpyArray } from '../store/npy.js';
import { DatasetSourceError, digestSources, isFile, readLinesIfPresent, readSourceFile, type SourceFile } from './files.js';
import { classesFromLabels, toClassIndices } from './labels.js';
import { countPerClass } from './subset.js';
import type { DatasetFilePaths, RawDataset, SourceSummary } from './types.js';

/**
 * User arrays as `.npy` files: images [N, C, H, W] (`npy_layout: NCHW`, the default),
 * [N, H, W, C] (`NHWC`) or [N, H, W] (one channel), dtype uint8, int32, float32 or float64,
 * holding pixel intensities in 0..pixel_max; labels [N] of an integer dtype.
 * Default file names inside `path`: train_x.npy, train_y.npy, test_x.npy, test_y.npy.
 */
export const NPY_FILE_NAMES: DatasetFilePaths = {
  train_x: 'train_x.npy',
  train_y: 'train_y.npy',
  test_x: 'test_x.npy',
  test_y: 'test_y.npy',
};

export interface NpySourceOptions {
  layout?: 'NCHW' | 'NHWC';
  /**
   * The value of a full-intensity pixel. Default: 255 for integer images; for float images 1 when
   * every training value is at most 1 (images in [0, 1]), else 255.
   */
  pixelMax?: number;
}

function inferPixelMax(arr: NpyArray): number {
  if (arr.dtype !== 'float32' && arr.dtype !== 'float64') return 255;
  const data = arr.data as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) if (data[i] > 1) return 255;
  return 1;
}

export function npyFilePaths(dir: string): DatasetFilePaths {
  return {
    train_x: join(dir, NPY_FILE_NAMES.train_x),
    train_y: join(dir, NPY_FILE_NAMES.train_y),
    test_x: join(dir, NPY_FILE_NAMES.test_x),
    test_y: join(dir, NPY_FILE_NAMES.test_y),
  };
}

function readArray(file: string, expected: string): NpyArray {
  return decodeNpy(readSourceFile(file, expected), file);
}

const IMAGE_DTYPES = ['uint8', 'int32', 'float32', 'float64'];

/** [N, C, H, W] of the image array, whatever its layout. */
function imageDims(arr: NpyArray, file: string, layout: 'NCHW' | 'NHWC'): [number, number, number, number] {
  if (!IMAGE_DTYPES.includes(arr.dtype)) {
    throw new DatasetSourceError(file, `image dtype ${arr.dtype}, expected one of ${IMAGE_DTYPES.join(', ')}`);
  }
  const s = arr.shape;
  if (s.length === 3) return [s[0], 1, s[1], s[2]];
  if (s.length === 4) return layout === 'NCHW' ? [s[0], s[1], s[2], s[3]] : [s[0], s[3], s[1], s[2]];
  throw new DatasetSourceError(file, `image array of shape [${s.join(', ')}], expected [N, C, H, W], [N, H, W, C] or [N, H, W] (npy_layout ${layout})`);
}

/** To NCHW float32 on the 0..255 scale, rejecting values outside 0..pixelMax (e.g. already-normalised data). */
function toPixels(arr: NpyArray, dims: [number, number, number, number], layout: 'NCHW' | 'NHWC', pixelMax: number, file: string): Float32Array {
  const [n, c, h, w] = dims;
  const src = arr.data;
  const scale = 255 / pixelMax;
  const out = new Float32Array(n * c * h * w);
  const nhwc = layout === 'NHWC' && arr.shape.length === 4;
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    if (!(v >= 0 && v <= pixelMax)) {
      throw new DatasetSourceError(
        file,
        `value ${v} at flat index ${i} is outside 0..${pixelMax}; expected pixel intensities (set npy_pixel_max to the full-intensity value)`,
      );
    }
    let o = i;
    if (nhwc) {
      // i = ((img * h + y) * w + x) * c + ch  ->  ((img * c + ch) * h + y) * w + x
      const ch = i % c;
      const pix = (i - ch) / c;
      const plane = h * w;
      const img = Math.floor(pix / plane);
      o = (img * c + ch) * plane + (pix - img * plane);
    }
    out[o] = v * scale;
  }
  return out;
}

function labels(arr: NpyArray, file: string, n: number, imagesFile: string): Int32Array {
  if (arr.shape.length !== 1) throw new DatasetSourceError(file, `label array of shape [${arr.shape.join(', ')}], expected [N]`);
  if (arr.shape[0] !== n) throw new DatasetSourceError(file, `count mismatch: ${arr.shape[0]} labels, but ${imagesFile} holds ${n} images`);
  return toClassIndices(arr.data, file);
}

function namesFile(paths: DatasetFilePaths): string {
  return join(dirname(paths.train_x), 'class_names.txt');
}

function classInfo(paths: DatasetFilePaths, trainY: Int32Array, testY: Int32Array) {
  const file = namesFile(paths);
  const list = readLinesIfPresent(file);
  return classesFromLabels(trainY, testY, paths.train_y, paths.test_y, list ? { list, source: file } : undefined);
}

function sources(paths: DatasetFilePaths): SourceFile[] {
  const files: SourceFile[] = (['train_x', 'train_y', 'test_x', 'test_y'] as const).map((role) => ({ role, path: paths[role] }));
  if (isFile(namesFile(paths))) files.push({ role: 'class_names', path: namesFile(paths) });
  return files;
}

interface Parsed {
  train: NpyArray;
  test: NpyArray;
  trainDims: [number, number, number, number];
  testDims: [number, number, number, number];
  trainY: Int32Array;
  testY: Int32Array;
  classes: number;
  classNames: string[];
}

function parse(paths: DatasetFilePaths, layout: 'NCHW' | 'NHWC'): Parsed {
  const what = (split: string) => `the ${split} images as .npy, [N, C, H, W] / [N, H, W, C] / [N, H, W]`;
  const train = readArray(paths.train_x, what('training'));
  const trainDims = imageDims(train, paths.train_x, layout);
  const test = readArray(paths.test_x, what('test'));
  const testDims = imageDims(test, paths.test_x, layout);
  if (trainDims.slice(1).join() !== testDims.slice(1).join()) {
    throw new DatasetSourceError(
      paths.test_x,
      `test images are [C, H, W] = [${testDims.slice(1).join(', ')}], expected [${trainDims.slice(1).join(', ')}] like ${paths.train_x}`,
    );
  }
  const trainY = labels(readArray(paths.train_y, 'the training labels as .npy, [N] integers'), paths.train_y, trainDims[0], paths.train_x);
  const testY = labels(readArray(paths.test_y, 'the test labels as .npy, [N] integers'), paths.test_y, testDims[0], paths.test_x);
  return { train, test, trainDims, testDims, trainY, testY, ...classInfo(paths, trainY, testY) };
}

export function loadNpyDataset(paths: DatasetFilePaths, opts: NpySourceOptions = {}): RawDataset {
  const layout = opts.layout ?? 'NCHW';
  const p = parse(paths, layout);
  const pixelMax = opts.pixelMax ?? inferPixelMax(p.train);
  if (!(pixelMax > 0)) throw new Error(`npy_pixel_max must be positive, got ${pixelMax}`);
  const [, channels, height, width] = p.trainDims;
  return {
    trainX: toPixels(p.train, p.trainDims, layout, pixelMax, paths.train_x),
    trainY: p.trainY,
    testX: toPixels(p.test, p.testDims, layout, pixelMax, paths.test_x),
    testY: p.testY,
    classes: p.classes,
    classNames: p.classNames,
    channels,
    height,
    width,
    digest: digestSources(sources(paths)),
  };
}

/** Shapes and label counts; the image values are neither converted nor range-checked here. */
export function describeNpyDataset(paths: DatasetFilePaths, opts: NpySourceOptions = {}): SourceSummary {
  const p = parse(paths, opts.layout ?? 'NCHW');
  const [, channels, height, width] = p.trainDims;
  return {
    classes: p.classes,
    classNames: p.classNames,
    channels,
    height,
    width,
    trainCounts: countPerClass(p.trainY, p.classes),
    testCounts: countPerClass(p.testY, p.classes),
    digest: digestSources(sources(paths)),
  };
}
