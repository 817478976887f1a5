import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CIFAR10_CLASSES } from '../src/data/cifar.js';
import { describeDatasetSource, loadDataset, loadRawDataset } from '../src/data/index.js';
import { tempDir, throwsNaming } from './data-helpers.js';

const PIXELS = 3072;

/** One record: label byte(s), then pixel p of record `id` = (id * 13 + p) % 256 (1024 R, 1024 G, 1024 B). */
function record(labels: number[], id: number): Buffer {
  const buf = Buffer.alloc(labels.length + PIXELS);
  labels.forEach((l, i) => (buf[i] = l));
  for (let p = 0; p < PIXELS; p++) buf[labels.length + p] = (id * 13 + p) % 256;
  return buf;
}

/** CIFAR-10 in `dir`: 5 training batches of 3 records (labels cycle 0..9) and a test batch of 4. */
function writeCifar10(dir: string): { trainLabels: number[]; testLabels: number[] } {
  mkdirSync(dir, { recursive: true });
  const trainLabels: number[] = [];
  let id = 0;
  for (let b = 1; b <= 5; b++) {
    const recs: Buffer[] = [];
    for (let r = 0; r < 3; r++) {
      const y = (b * 3 + r) % 10;
      trainLabels.push(y);
      recs.push(record([y], id++));
    }
    writeFileSync(join(dir, `data_batch_${b}.bin`), Buffer.concat(recs));
  }
  const testLabels = [9, 0, 3, 3];
  writeFileSync(join(dir, 'test_batch.bin'), Buffer.concat(testLabels.map((y, i) => record([y], 100 + i))));
  return { trainLabels, testLabels };
}

function expectedImage(id: number): number[] {
  return Array.from({ length: PIXELS }, (_, p) => (id * 13 + p) % 256);
}

describe('CIFAR-10 binary batches', () => {
  it('reads the records in batch order as CHW images with their labels', () => {
    const dir = tempDir('cifar10');
    const { trainLabels, testLabels } = writeCifar10(dir);
    const d = loadRawDataset({ name: 'cifar10', path: dir });
    assert.deepEqual([d.channels, d.height, d.width, d.classes], [3, 32, 32, 10]);
    assert.deepEqual(d.classNames, CIFAR10_CLASSES);
    assert.deepEqual(Array.from(d.trainY), trainLabels);
    assert.deepEqual(Array.from(d.testY), testLabels);
    // Record 7 is the second record of data_batch_3; test record 2 has id 102.
    assert.deepEqual(Array.from(d.trainX.subarray(7 * PIXELS, 8 * PIXELS)), expectedImage(7));
    assert.deepEqual(Array.from(d.testX.subarray(2 * PIXELS, 3 * PIXELS)), expectedImage(102));
  });

  it('finds cifar-10-batches-bin/ inside the path and reads batches.meta.txt', () => {
    const root = tempDir('cifar10-nested');
    const dir = join(root, 'cifar-10-batches-bin');
    writeCifar10(dir);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    writeFileSync(join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
    const info = describeDatasetSource({ name: 'cifar10', path: root });
    assert.deepEqual(info.classNames, names);
    assert.deepEqual(info.trainPerClass, [1, 1, 1, 2, 2, 2, 2, 2, 1, 1]);
    assert.deepEqual(info.testPerClass, [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]);
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\n');
    throwsNaming(() => describeDatasetSource({ name: 'cifar10', path: root }), join(dir, 'batches.meta.txt'), /2 class names, expected 10/);
  });

  it('uses the published normalisation and class-balanced limits', async () => {
    const dir = tempDir('cifar10-limit');
    const { trainLabels } = writeCifar10(dir);
    const d = await loadDataset({ name: 'cifar10', path: dir, train_limit: 1 });
    assert.deepEqual(d.mean, [0.4914, 0.4822, 0.4465]);
    assert.deepEqual(d.std, [0.2023, 0.1994, 0.201]);
    assert.equal(d.statsSource, 'reference');
    // The first record of each class, in source order.
    const firstOf = new Map<number, number>();
    trainLabels.forEach((y, i) => firstOf.has(y) || firstOf.set(y, i));
    const kept = [...firstOf.values()].sort((a, b) => a - b);
    assert.deepEqual(Array.from(d.trainY), kept.map((i) => trainLabels[i]));
    assert.deepEqual(Array.from(d.trainX.subarray(PIXELS, 2 * PIXELS)), expectedImage(kept[1]));
    assert.deepEqual(d.trainPerClass, new Array(10).fill(1));
  });

  it('names the file when a batch is missing, truncated or mislabelled', () => {
    const dir = tempDir('cifar10-bad');
    writeCifar10(dir);
    const batch3 = join(dir, 'data_batch_3.bin');
    writeFileSync(batch3, Buffer.concat([record([1], 0), record([2], 1).subarray(0, 1000)]));
    throwsNaming(() => loadRawDataset({ name: 'cifar10', path: dir }), batch3, /4073 bytes is not a whole number of 3073-byte records/);
    writeFileSync(batch3, Buffer.concat([record([1], 0), record([12], 1)]));
    throwsNaming(() => loadRawDataset({ name: 'cifar10', path: dir }), batch3, /record 1 has label 12, expected 0\.\.9/);
    const empty = tempDir('cifar10-empty');
    throwsNaming(() => loadRawDataset({ name: 'cifar10', path: empty }), join(empty, 'test_batch.bin'), /not found \(expected the CIFAR-10 binary files/);
    writeCifar10(empty);
    rmSync(join(empty, 'data_batch_5.bin'));
    throwsNaming(() => loadRawDataset({ name: 'cifar10', path: empty }), join(empty, 'data_batch_5.bin'), /not found/);
  });
});

describe('CIFAR-100 binary', () => {
  function writeCifar100(dir: string) {
    const train = [
      [0, 10],
      [1, 11],
      [0, 12],
      [19, 99],
    ];
    const test = [
      [1, 11],
      [19, 98],
    ];
    writeFileSync(join(dir, 'train.bin'), Buffer.concat(train.map((l, i) => record(l, i))));
    writeFileSync(join(dir, 'test.bin'), Buffer.concat(test.map((l, i) => record(l, 50 + i))));
  }

  it('reads fine or coarse labels and their name files', () => {
    const dir = tempDir('cifar100');
    writeCifar100(dir);
    const fine = loadRawDataset({ name: 'cifar100', path: dir });
    assert.equal(fine.classes, 100);
    assert.deepEqual(Array.from(fine.trainY), [10, 11, 12, 99]);
    assert.deepEqual(Array.from(fine.testY), [11, 98]);
    assert.equal(fine.classNames[42], '42');
    assert.deepEqual(Array.from(fine.trainX.subarray(3 * PIXELS, 4 * PIXELS)), expectedImage(3));
    writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `super${i}`).join('\n'));
    const coarse = loadRawDataset({ name: 'cifar100', path: dir, cifar100_labels: 'coarse' });
    assert.equal(coarse.classes, 20);
    assert.deepEqual(Array.from(coarse.trainY), [0, 1, 0, 19]);
    assert.equal(coarse.classNames[19], 'super19');
    assert.deepEqual(Array.from(coarse.testX), Array.from(fine.testX));
    const info = describeDatasetSource({ name: 'cifar100', path: dir, cifar100_labels: 'coarse' });
    assert.deepEqual(info.trainPerClass.slice(0, 2), [2, 1]);
    assert.equal(info.trainPerClass[19], 1);
    assert.equal(info.digest, coarse.digest);
  });

  it('rejects a CIFAR-10-sized record file and out-of-range labels, naming the file', () => {
    const dir = tempDir('cifar100-bad');
    writeCifar100(dir);
    const train = join(dir, 'train.bin');
    writeFileSync(train, Buffer.concat([record([3], 0), record([4], 1)]));
    throwsNaming(() => loadRawDataset({ name: 'cifar100', path: dir }), train, /not a whole number of 3074-byte records/);
    writeFileSync(train, record([20, 5], 0));
    throwsNaming(() => loadRawDataset({ name: 'cifar100', path: dir, cifar100_labels: 'coarse' }), train, /label 20, expected 0\.\.19/);
  });
});

