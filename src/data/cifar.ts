import { join } from 'node:path';
import { DatasetSourceError, digestSources, isFile, readLinesIfPresent, readSourceFile, type SourceFile } from './files.js';
import { countPerClass } from './subset.js';
import type { RawDataset, SourceSummary } from './types.js';

/**
 * The CIFAR binary distributions (https://www.cs.toronto.edu/~kriz/cifar.html).
 * CIFAR-10 (`cifar-10-batches-bin/`): data_batch_1..5.bin and test_batch.bin, records of
 * 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom), i.e. CHW.
 * CIFAR-100 (`cifar-100-binary/`): train.bin and test.bin, records of 1 coarse label byte +
 * 1 fine label byte + 3072 pixel bytes. Class names come from batches.meta.txt /
 * fine_label_names.txt / coarse_label_names.txt when present.
 */
const SIDE = 32;
const PIXELS = 3 * SIDE * SIDE;

export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR10_TEST_FILE = 'test_batch.bin';
export const CIFAR100_TRAIN_FILE = 'train.bin';
export const CIFAR100_TEST_FILE = 'test.bin';
/** The names batches.meta.txt lists, used when that file is absent. */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

interface Layout {
  /** Bytes before the pixels in each record. */
  labelBytes: number;
  /** Which of those bytes is the label used. */
  labelOffset: number;
  classes: number;
  train: string[];
  test: string[];
}

/** `path` itself, or the folder the official archive extracts to inside it. */
function findDir(path: string, marker: string, subdir: string, what: string): string {
  if (isFile(join(path, marker))) return path;
  if (isFile(join(path, subdir, marker))) return join(path, subdir);
  throw new DatasetSourceError(
    join(path, marker),
    `not found (expected the ${what} binary files in ${path} or in ${join(path, subdir)})`,
  );
}

function recordCount(buf: Buffer, file: string, layout: Layout): number {
  const record = layout.labelBytes + PIXELS;
  if (buf.length === 0 || buf.length % record !== 0) {
    throw new DatasetSourceError(
      file,
      `${buf.length} bytes is not a whole number of ${record}-byte records (${layout.labelBytes} label byte(s) + 3072 pixel bytes); truncated or not a CIFAR binary batch`,
    );
  }
  return buf.length / record;
}

function readLabels(buf: Buffer, file: string, layout: Layout, n: number, into: Int32Array, at: number): void {
  const record = layout.labelBytes + PIXELS;
  for (let i = 0; i < n; i++) {
    const y = buf[i * record + layout.labelOffset];
    if (y >= layout.classes) {
      throw new DatasetSourceError(file, `record ${i} has label ${y}, expected 0..${layout.classes - 1}`);
    }
    into[at + i] = y;
  }
}

function loadSplit(dir: string, files: string[], layout: Layout): { x: Float32Array; y: Int32Array } {
  const bufs = files.map((f) => {
    const file = join(dir, f);
    const buf = readSourceFile(file, `a CIFAR binary batch of ${layout.labelBytes + PIXELS}-byte records`);
    return { file, buf, n: recordCount(buf, file, layout) };
  });
  const total = bufs.reduce((a, b) => a + b.n, 0);
  const x = new Float32Array(total * PIXELS);
  const y = new Int32Array(total);
  let at = 0;
  const record = layout.labelBytes + PIXELS;
  for (const { file, buf, n } of bufs) {
    readLabels(buf, file, layout, n, y, at);
    for (let i = 0; i < n; i++) {
      const src = buf.subarray(i * record + layout.labelBytes, (i + 1) * record);
      x.set(src, (at + i) * PIXELS);
    }
    at += n;
  }
  return { x, y };
}

function countSplit(dir: string, files: string[], layout: Layout): number[] {
  const counts = new Array<number>(layout.classes).fill(0);
  for (const f of files) {
    const file = join(dir, f);
    const buf = readSourceFile(file, `a CIFAR binary batch of ${layout.labelBytes + PIXELS}-byte records`);
    const n = recordCount(buf, file, layout);
    const y = new Int32Array(n);
    readLabels(buf, file, layout, n, y, 0);
    countPerClass(y, layout.classes).forEach((c, k) => (counts[k] += c));
  }
  return counts;
}

function namesFrom(file: string, classes: number, fallback: string[]): string[] {
  const list = readLinesIfPresent(file);
  if (list === undefined) return fallback;
  if (list.length !== classes) throw new DatasetSourceError(file, `${list.length} class names, expected ${classes}`);
  return list;
}

interface Resolved {
  dir: string;
  layout: Layout;
  classNames: string[];
  /** The class-name file, when present: it is part of the digest since it shapes the artifact. */
  namesFile?: string;
}

function cifar10(path: string): Resolved {
  const dir = findDir(path, CIFAR10_TEST_FILE, 'cifar-10-batches-bin', 'CIFAR-10');
  const layout: Layout = { labelBytes: 1, labelOffset: 0, classes: 10, train: CIFAR10_TRAIN_FILES, test: [CIFAR10_TEST_FILE] };
  const namesFile = join(dir, 'batches.meta.txt');
  return { dir, layout, classNames: namesFrom(namesFile, 10, CIFAR10_CLASSES), namesFile: isFile(namesFile) ? namesFile : undefined };
}

function cifar100(path: string, labels: 'fine' | 'coarse'): Resolved {
  const dir = findDir(path, CIFAR100_TEST_FILE, 'cifar-100-binary', 'CIFAR-100');
  const classes = labels === 'fine' ? 100 : 20;
  const layout: Layout = {
    labelBytes: 2,
    labelOffset: labels === 'fine' ? 1 : 0,
    classes,
    train: [CIFAR100_TRAIN_FILE],
    test: [CIFAR100_TEST_FILE],
  };
  const fallback = Array.from({ length: classes }, (_, i) => String(i));
  const namesFile = join(dir, `${labels}_label_names.txt`);
  return { dir, layout, classNames: namesFrom(namesFile, classes, fallback), namesFile: isFile(namesFile) ? namesFile : undefined };
}

function sources(r: Resolved): SourceFile[] {
  const files = [...r.layout.train, ...r.layout.test].map((f) => ({ role: f, path: join(r.dir, f) }));
  if (r.namesFile) files.push({ role: 'class_names', path: r.namesFile });
  return files;
}

function load(r: Resolved): RawDataset {
  const train = loadSplit(r.dir, r.layout.train, r.layout);
  const test = loadSplit(r.dir, r.layout.test, r.layout);
  return {
    trainX: train.x,
    trainY: train.y,
    testX: test.x,
    testY: test.y,
    classes: r.layout.classes,
    classNames: r.classNames,
    channels: 3,
    height: SIDE,
    width: SIDE,
    digest: digestSources(sources(r)),
  };
}

function describe(r: Resolved): SourceSummary {
  return {
    classes: r.layout.classes,
    classNames: r.classNames,
    channels: 3,
    height: SIDE,
    width: SIDE,
    trainCounts: countSplit(r.dir, r.layout.train, r.layout),
    testCounts: countSplit(r.dir, r.layout.test, r.layout),
    digest: digestSources(sources(r)),
  };
}

export function loadCifar10(path: string): RawDataset {
  return load(cifar10(path));
}

export function describeCifar10(path: string): SourceSummary {
  return describe(cifar10(path));
}

export function loadCifar100(path: string, labels: 'fine' | 'coarse' = 'fine'): RawDataset {
  return load(cifar100(path, labels));
}

export function describeCifar100(path: string, labels: 'fine' | 'coarse' = 'fine'): SourceSummary {
  return describe(cifar100(path, labels));
}
