import { DatasetSourceError } from './files.js';

/** Integer label arrays as the sources deliver them (IDX, npy, CIFAR bytes). */
export type LabelSource = Uint8Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array;

/** Convert to int32 class indices; non-integer dtypes and negative values are rejected, naming the file. */
export function toClassIndices(data: LabelSource, source: string): Int32Array {
  if (data instanceof Float32Array || data instanceof Float64Array) {
    throw new DatasetSourceError(source, 'labels have a floating-point dtype, expected integer class indices');
  }
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (v < 0 || v > 0x7fffffff) throw new DatasetSourceError(source, `label ${v} at index ${i} is not a class index (expected 0 or more)`);
    out[i] = v;
  }
  return out;
}

export function maxLabel(y: Int32Array): number {
  let m = -1;
  for (let i = 0; i < y.length; i++) if (y[i] > m) m = y[i];
  return m;
}

/** Every label must be below `classes`; `rangeFrom` says where the class count came from. */
export function checkLabelRange(y: Int32Array, classes: number, source: string, rangeFrom: string): void {
  for (let i = 0; i < y.length; i++) {
    if (y[i] >= classes) {
      throw new DatasetSourceError(source, `label ${y[i]} at index ${i} is outside 0..${classes - 1} (${rangeFrom})`);
    }
  }
}

/** Class count and names for sources that carry no class list of their own (idx, npy). */
export function classesFromLabels(
  trainY: Int32Array,
  testY: Int32Array,
  trainSource: string,
  testSource: string,
  names: { list: string[]; source: string } | undefined,
): { classes: number; classNames: string[] } {
  const classes = names ? names.list.length : maxLabel(trainY) + 1;
  if (classes < 1) throw new DatasetSourceError(trainSource, 'no labels, expected at least one training image');
  const rangeFrom = names ? `${names.source} lists ${classes} classes` : `the training labels go up to ${classes - 1}`;
  checkLabelRange(trainY, classes, trainSource, rangeFrom);
  checkLabelRange(testY, classes, testSource, rangeFrom);
  return { classes, classNames: names ? names.list : Array.from({ length: classes }, (_, i) => String(i)) };
}
