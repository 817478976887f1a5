import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decodeIdx, encodeIdx, readIdx } from '../src/data/idx.js';
import { describeDatasetSource, loadDataset, loadRawDataset } from '../src/data/index.js';
import { IDX_FILE_NAMES } from '../src/data/mnist.js';
import { tempDir, throwsNaming } from './data-helpers.js';

/** Images whose pixel (i, y, x) is a known function, so any reordering shows. */
function images(n: number, h: number, w: number, seed: number): Uint8Array {
  const out = new Uint8Array(n * h * w);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + seed * 31) % 256;
  return out;
}

/** A small IDX dataset: 12 train images (labels 0..2), 5 test images, 4x3 pixels; test files gzipped. */
function writeIdxSet(dir: string, opts: { gzipTest?: boolean } = {}) {
  const trainX = images(12, 4, 3, 1);
  const trainY = Uint8Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 0]);
  const testX = images(5, 4, 3, 2);
  const testY = Uint8Array.from([2, 1, 0, 0, 1]);
  const gz = opts.gzipTest ?? true;
  writeFileSync(join(dir, IDX_FILE_NAMES.train_x), encodeIdx(trainX, [12, 4, 3]));
  writeFileSync(join(dir, IDX_FILE_NAMES.train_y), encodeIdx(trainY, [12]));
  const put = (name: string, buf: Buffer) => writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(buf) : buf);
  put(IDX_FILE_NAMES.test_x, encodeIdx(testX, [5, 4, 3]));
  put(IDX_FILE_NAMES.test_y, encodeIdx(testY, [5]));
  return { trainX, trainY, testX, testY };
}

describe('IDX parser', () => {
  it('round-trips every element type, big-endian', () => {
    const cases = [
      Uint8Array.from([0, 1, 255]),
      Int8Array.from([-128, 0, 127]),
      Int16Array.from([-32768, 258, 32767]),
      Int32Array.from([-2147483648, 16909060, 2147483647]),
      Float32Array.from([-1.5, 0.25, 3e38]),
      Float64Array.from([-1e300, Math.PI, 2 ** -40]),
    ];
    for (const data of cases) {
      const buf = encodeIdx(data, [3, 1]);
      const arr = decodeIdx(buf, 'mem');
      assert.deepEqual(arr.shape, [3, 1]);
      assert.deepEqual(Array.from(arr.data), Array.from(data));
    }
    // Byte layout of the header and of a big-endian int16 value, as the MNIST page defines it.
    assert.deepEqual([...encodeIdx(Int16Array.from([258]), [1])], [0, 0, 0x0b, 1, 0, 0, 0, 1, 1, 2]);
  });

  it('reports wrong magic, truncation and trailing bytes with the file name', () => {
    const dir = tempDir('idx-bad');
    const good = encodeIdx(images(2, 4, 4, 0), [2, 4, 4]);
    const f = (name: string, buf: Buffer) => {
      const p = join(dir, name);
      writeFileSync(p, buf);
      return p;
    };
    const magic = f('magic', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 3]), good.subarray(4)]));
    throwsNaming(() => readIdx(magic), magic, /not an IDX file: magic bytes 1f 8b 08 03/);
    const truncated = f('truncated', good.subarray(0, good.length - 5));
    throwsNaming(() => readIdx(truncated), truncated, /truncated: header declares shape \[2, 4, 4\] of uint8 = 32 data bytes, found 27/);
    const header = f('header', good.subarray(0, 9));
    throwsNaming(() => readIdx(header), header, /truncated IDX header/);
    const trailing = f('trailing', Buffer.concat([good, Buffer.from([1])]));
    throwsNaming(() => readIdx(trailing), trailing, /trailing bytes/);
    const badGz = f('broken.gz', good);
    throwsNaming(() => readIdx(badGz), badGz, /not valid gzip data/);
    const missing = join(dir, 'absent');
    throwsNaming(() => readIdx(missing), missing, /not found/);
  });
});

describe('idx dataset source', () => {
  it('loads plain and gzipped files into NCHW floats with the labels in file order', () => {
    const dir = tempDir('idx-set');
    const src = writeIdxSet(dir);
    const d = loadRawDataset({ name: 'idx', path: dir });
    assert.equal(d.channels, 1);
    assert.equal(d.height, 4);
    assert.equal(d.width, 3);
    assert.equal(d.classes, 3);
    assert.deepEqual(d.classNames, ['0', '1', '2']);
    assert.deepEqual(Array.from(d.trainX), Array.from(src.trainX));
    assert.deepEqual(Array.from(d.trainY), Array.from(src.trainY));
    assert.deepEqual(Array.from(d.testX), Array.from(src.testX));
    assert.deepEqual(Array.from(d.testY), Array.from(src.testY));
    assert.match(d.digest, /^[0-9a-f]{64}$/);
  });

  it('describes the source exactly and with the same digest, without depending on the folder', async () => {
    const a = tempDir('idx-a');
    const b = tempDir('idx-b');
    writeIdxSet(a);
    writeIdxSet(b);
    const info = describeDatasetSource({ name: 'idx', path: a, train_limit: 3 });
    assert.deepEqual(info.trainPerClass, [3, 3, 3]); // counts 4, 3, 5 capped at 3
    assert.deepEqual(info.testPerClass, [2, 2, 1]);
    assert.deepEqual([info.classes, info.channels, info.height, info.width], [3, 1, 4, 3]);
    const loaded = await loadDataset({ name: 'idx', path: a, train_limit: 3 });
    assert.equal(info.digest, loaded.digest);
    assert.equal(describeDatasetSource({ name: 'idx', path: b }).digest, info.digest);
    writeFileSync(join(b, IDX_FILE_NAMES.train_y), encodeIdx(Uint8Array.from([1, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 0]), [12]));
    assert.notEqual(describeDatasetSource({ name: 'idx', path: b }).digest, info.digest);
  });

  it('takes class names from class_names.txt and checks labels against them', () => {
    const dir = tempDir('idx-names');
    writeIdxSet(dir, { gzipTest: false });
    writeFileSync(join(dir, 'class_names.txt'), 'cat\ndog\nbird\nfish\n');
    const d = loadRawDataset({ name: 'idx', path: dir });
    assert.equal(d.classes, 4);
    assert.deepEqual(d.classNames, ['cat', 'dog', 'bird', 'fish']);
    writeFileSync(join(dir, 'class_names.txt'), 'cat\ndog\n');
    throwsNaming(() => loadRawDataset({ name: 'idx', path: dir }), join(dir, IDX_FILE_NAMES.train_y), /label 2 at index 2 is outside 0\.\.1/);
  });

  it('names the file on count mismatches, bad shapes, out-of-range test labels and missing files', () => {
    const dir = tempDir('idx-mismatch');
    writeIdxSet(dir, { gzipTest: false });
    const labels = join(dir, IDX_FILE_NAMES.train_y);
    writeFileSync(labels, encodeIdx(Uint8Array.from([0, 1, 2]), [3]));
    throwsNaming(() => loadRawDataset({ name: 'idx', path: dir }), labels, /count mismatch: 3 labels, but .* holds 12 images/);
    writeFileSync(labels, encodeIdx(Float32Array.from({ length: 12 }, () => 1), [12]));
    throwsNaming(() => loadRawDataset({ name: 'idx', path: dir }), labels, /floating-point dtype/);
    writeFileSync(labels, encodeIdx(Uint8Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 0]), [12]));

    const testLabels = join(dir, IDX_FILE_NAMES.test_y);
    writeFileSync(testLabels, encodeIdx(Uint8Array.from([2, 1, 0, 7, 1]), [5]));
    throwsNaming(() => loadRawDataset({ name: 'idx', path: dir }), testLabels, /label 7 at index 3 is outside 0\.\.2/);
    writeFileSync(testLabels, encodeIdx(Uint8Array.from([2, 1, 0, 0, 1]), [5]));

    const testImages = join(dir, IDX_FILE_NAMES.test_x);
    writeFileSync(testImages, encodeIdx(images(5, 12, 1, 0), [5, 12]));
    throwsNaming(() => loadRawDataset({ name: 'idx', path: dir }), testImages, /expected 3 dimensions \[N, H, W\]/);
    writeFileSync(testImages, encodeIdx(images(5, 3, 4, 0), [5, 3, 4]));
    throwsNaming(() => describeDatasetSource({ name: 'idx', path: dir }), testImages, /test images are 3x4, expected 4x3/);

    const empty = tempDir('idx-empty');
    throwsNaming(() => loadRawDataset({ name: 'idx', path: empty }), join(empty, IDX_FILE_NAMES.train_x), /not found \(expected the training images/);
  });

  it('accepts explicit file paths', () => {
    const dir = tempDir('idx-paths');
    writeIdxSet(dir, { gzipTest: false });
    const paths = {
      train_x: join(dir, IDX_FILE_NAMES.train_x),
      train_y: join(dir, IDX_FILE_NAMES.train_y),
      test_x: join(dir, IDX_FILE_NAMES.test_x),
      test_y: join(dir, IDX_FILE_NAMES.test_y),
    };
    const d = loadRawDataset({ name: 'idx', paths });
    assert.equal(d.trainY.length, 12);
    assert.equal(d.testY.length, 5);
  });
});
