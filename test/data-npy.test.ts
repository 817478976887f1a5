import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { describeDatasetSource, loadDataset, loadRawDataset } from '../src/data/index.js';
import { encodeNpy, writeNpy } from '../src/store/npy.js';
import { tempDir, throwsNaming } from './data-helpers.js';

const N = 6;
const C = 3;
const H = 2;
const W = 4;

/** NCHW uint8 images with pixel (i, c, y, x) = i * 40 + c * 10 + y * 4 + x. */
function nchw(n: number): Uint8Array {
  const out = new Uint8Array(n * C * H * W);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[((i * C + c) * H + y) * W + x] = i * 40 + c * 10 + y * 4 + x;
  return out;
}

function toNhwc(src: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[((i * H + y) * W + x) * C + c] = src[((i * C + c) * H + y) * W + x];
  return out;
}

function writeSet(dir: string, layout: 'NCHW' | 'NHWC', asFloat = false) {
  const train = nchw(N);
  const test = nchw(2);
  const img = (a: Uint8Array, n: number) => {
    const data = layout === 'NCHW' ? a : toNhwc(a, n);
    return asFloat ? Float32Array.from(data, (v) => v / 255) : data;
  };
  const shape = (n: number) => (layout === 'NCHW' ? [n, C, H, W] : [n, H, W, C]);
  writeNpy(join(dir, 'train_x.npy'), img(train, N), shape(N));
  writeNpy(join(dir, 'train_y.npy'), Int32Array.from([0, 1, 2, 0, 1, 0]), [N]);
  writeNpy(join(dir, 'test_x.npy'), img(test, 2), shape(2));
  writeNpy(join(dir, 'test_y.npy'), new BigInt64Array([2n, 0n]), [2]);
  return { train, test };
}

describe('npy dataset source', () => {
  it('reads NCHW and NHWC arrays into the same NCHW images', () => {
    const a = tempDir('npy-nchw');
    const b = tempDir('npy-nhwc');
    const { train, test } = writeSet(a, 'NCHW');
    writeSet(b, 'NHWC');
    const d1 = loadRawDataset({ name: 'npy', path: a });
    const d2 = loadRawDataset({ name: 'npy', path: b, npy_layout: 'NHWC' });
    assert.deepEqual([d1.channels, d1.height, d1.width, d1.classes], [C, H, W, 3]);
    assert.deepEqual([d2.channels, d2.height, d2.width], [C, H, W]);
    assert.deepEqual(Array.from(d1.trainX), Array.from(train));
    assert.deepEqual(Array.from(d2.trainX), Array.from(train));
    assert.deepEqual(Array.from(d2.testX), Array.from(test));
    assert.deepEqual(Array.from(d1.testY), [2, 0]);
    // Reading NHWC files as NCHW gets the shape wrong in a visible way.
    assert.equal(loadRawDataset({ name: 'npy', path: b }).channels, H);
  });

  it('scales float images by npy_pixel_max and computes the normalisation on the full training split', async () => {
    const dir = tempDir('npy-float');
    const { train } = writeSet(dir, 'NCHW', true);
    const d = await loadDataset({ name: 'npy', path: dir, npy_pixel_max: 1, train_limit: 1 });
    assert.equal(d.statsSource, 'computed');
    assert.deepEqual(Array.from(d.trainY), [0, 1, 2]);
    assert.ok(Math.abs(d.trainX[5] - train[5]) < 1e-3);
    // Reference statistics from all 6 images, although only 3 are kept.
    for (let c = 0; c < C; c++) {
      const vals: number[] = [];
      for (let i = 0; i < N; i++) for (let p = 0; p < H * W; p++) vals.push(train[(i * C + c) * H * W + p] / 255);
      const mean = vals.reduce((s, v) => s + v, 0) / vals.length;
      const std = Math.sqrt(vals.reduce((s, v) => s + (v - mean) ** 2, 0) / vals.length);
      assert.ok(Math.abs(d.mean[c] - mean) < 1e-6, `mean[${c}] ${d.mean[c]} vs ${mean}`);
      assert.ok(Math.abs(d.std[c] - std) < 1e-6, `std[${c}] ${d.std[c]} vs ${std}`);
    }
    // Without npy_pixel_max, float images in [0, 1] are recognised as such.
    assert.ok(Math.abs(loadRawDataset({ name: 'npy', path: dir }).trainX[5] - train[5]) < 1e-3);
  });

  it('reads 3-D image arrays as one channel and class_names.txt for names', () => {
    const dir = tempDir('npy-gray');
    writeNpy(join(dir, 'train_x.npy'), new Float64Array(3 * 5 * 5).fill(200), [3, 5, 5]);
    writeNpy(join(dir, 'train_y.npy'), Uint8Array.from([1, 0, 1]), [3]);
    writeNpy(join(dir, 'test_x.npy'), new Float64Array(5 * 5).fill(3), [1, 5, 5]);
    writeNpy(join(dir, 'test_y.npy'), Int32Array.from([1]), [1]);
    writeFileSync(join(dir, 'class_names.txt'), 'left\nright\n');
    const d = loadRawDataset({ name: 'npy', path: dir });
    assert.deepEqual([d.channels, d.height, d.width], [1, 5, 5]);
    assert.deepEqual(d.classNames, ['left', 'right']);
    assert.equal(d.trainX[0], 200);
    const info = describeDatasetSource({ name: 'npy', path: dir, train_limit: 1 });
    assert.deepEqual(info.trainPerClass, [1, 1]);
    assert.deepEqual(info.testPerClass, [0, 1]);
    assert.equal(info.digest, d.digest);
  });

  it('names the file on bad shapes, dtypes, counts and values', () => {
    const dir = tempDir('npy-bad');
    writeSet(dir, 'NCHW');
    const trainX = join(dir, 'train_x.npy');
    const trainY = join(dir, 'train_y.npy');
    const testX = join(dir, 'test_x.npy');
    writeNpy(trainY, Int32Array.from([0, 1, 2]), [3]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), trainY, /count mismatch: 3 labels, but .* holds 6 images/);
    writeNpy(trainY, Float32Array.from([0, 1, 2, 0, 1, 0]), [N]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), trainY, /floating-point dtype/);
    writeNpy(trainY, Int32Array.from([0, 1, 2, 0, -1, 0]), [N]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), trainY, /label -1 at index 4/);
    writeNpy(trainY, Int32Array.from([0, 1, 2, 0, 1, 0]), [N]);

    writeNpy(testX, new Uint8Array(2 * C * W * H), [2, C, W, H]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), testX, /test images are \[C, H, W\] = \[3, 4, 2\], expected \[3, 2, 4\]/);
    writeNpy(testX, new Uint8Array(2 * C * H * W), [2, C * H * W]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), testX, /expected \[N, C, H, W\]/);
    writeNpy(testX, Float32Array.from({ length: 2 * C * H * W }, (_, i) => (i === 5 ? -0.5 : 0.5)), [2, C, H, W]);
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), testX, /value -0\.5 at flat index 5 is outside 0\.\.255/);

    writeFileSync(trainX, encodeNpy(nchw(N), [N, C, H, W]).subarray(0, 200));
    throwsNaming(() => loadRawDataset({ name: 'npy', path: dir }), trainX, /\.npy data holds/);
    const missing = tempDir('npy-missing');
    throwsNaming(() => loadRawDataset({ name: 'npy', path: missing }), join(missing, 'train_x.npy'), /not found \(expected the training images/);
  });
});
