import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { encodeIdx } from '../src/data/idx.js';
import { IDX_FILE_NAMES } from '../src/data/mnist.js';
import { computeChannelStats, normalizeInPlace } from '../src/data/normalize.js';
import { classPrefixIndices } from '../src/data/subset.js';
import { datasetStage, describeDatasetSource, loadDatasetArtifact, type DatasetParams } from '../src/stages/dataset.js';
import { readNpy } from '../src/store/npy.js';
import { fakeContext, tempDir } from './data-helpers.js';
import { applyZca, fitZca } from '../src/data/zca.js';
import { maxAbsDiff, setupBackend } from './nn-backend.js';

/** 14 training images (classes 0..2, 4x4), 4 test images; pixel values depend on image and position. */
function writeSource(dir: string) {
  const trainY = Uint8Array.from([2, 0, 1, 0, 0, 2, 1, 1, 0, 2, 1, 0, 2, 2]);
  const trainX = Uint8Array.from({ length: 14 * 16 }, (_, k) => (k * 37) % 256);
  const testY = Uint8Array.from([1, 0, 2, 0]);
  const testX = Uint8Array.from({ length: 4 * 16 }, (_, k) => (k * 11) % 256);
  writeFileSync(join(dir, IDX_FILE_NAMES.train_x), encodeIdx(trainX, [14, 4, 4]));
  writeFileSync(join(dir, IDX_FILE_NAMES.train_y), encodeIdx(trainY, [14]));
  writeFileSync(join(dir, IDX_FILE_NAMES.test_x), encodeIdx(testX, [4, 4, 4]));
  writeFileSync(join(dir, IDX_FILE_NAMES.test_y), encodeIdx(testY, [4]));
  return { trainX, trainY, testX, testY };
}

describe('dataset stage', () => {
  it('writes normalised NCHW arrays, meta.json, samples.png and tracking records', async () => {
    const src = tempDir('stage-src');
    const out = tempDir('stage-out');
    const source = writeSource(src);
    const params: DatasetParams = { name: 'idx', path: src, train_limit: 3 };
    const { ctx, records, progress } = fakeContext(params, out);
    await datasetStage.run(ctx);
    assert.deepEqual([datasetStage.kind, datasetStage.version, datasetStage.needsTensors], ['dataset', 1, false]);

    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'));
    // Statistics of all 14 training images, although the limit keeps 9.
    const full = computeChannelStats(Float32Array.from(source.trainX), 1, 4, 4);
    assert.deepEqual(meta.mean, full.mean);
    assert.deepEqual(meta.std, full.std);
    assert.equal(meta.stats_source, 'computed');
    assert.deepEqual(
      [meta.name, meta.classes, meta.class_names, meta.channels, meta.height, meta.width, meta.train_count, meta.test_count],
      ['idx', 3, ['0', '1', '2'], 1, 4, 4, 9, 4],
    );
    assert.equal(meta.digest, describeDatasetSource(params).digest);
    assert.deepEqual(meta.train_per_class, [3, 3, 3]);

    const trainX = readNpy(join(out, 'train_x.npy'));
    const trainY = readNpy(join(out, 'train_y.npy'));
    assert.deepEqual([trainX.dtype, trainX.shape, trainY.dtype, trainY.shape], ['float32', [9, 1, 4, 4], 'int32', [9]]);
    const kept = Array.from(classPrefixIndices(Int32Array.from(source.trainY), 3, 3));
    assert.deepEqual(kept, [0, 1, 2, 3, 4, 5, 6, 7, 9]);
    assert.deepEqual(Array.from(trainY.data as Int32Array), kept.map((i) => source.trainY[i]));
    // Image 8 of the artifact is source image 9; x = (pixel / 255 - mean) / std.
    const x = trainX.data as Float32Array;
    for (let p = 0; p < 16; p++) {
      const expected = (source.trainX[9 * 16 + p] / 255 - full.mean[0]) / full.std[0];
      assert.ok(Math.abs(x[8 * 16 + p] - expected) < 1e-5);
    }
    const testX = readNpy(join(out, 'test_x.npy'));
    assert.deepEqual(testX.shape, [4, 1, 4, 4]);
    assert.ok(Math.abs((testX.data as Float32Array)[17] - (source.testX[17] / 255 - full.mean[0]) / full.std[0]) < 1e-5);
    assert.deepEqual(Array.from(readNpy(join(out, 'test_y.npy')).data as Int32Array), [1, 0, 2, 0]);

    // One row per class, 10 columns, 4x4 images upscaled x2 with 2 pixels of padding.
    const png = PNG.sync.read(readFileSync(join(out, 'samples.png')));
    assert.deepEqual([png.width, png.height], [2 + 10 * 10, 2 + 3 * 10]);
    // Row 1 (class 1), column 0 is artifact image 2 = source image 2; its top-left pixel:
    assert.equal(png.data[((2 + 10) * png.width + 2) * 4], source.trainX[2 * 16]);

    const loaded = loadDatasetArtifact(out);
    assert.deepEqual(loaded.meta, meta);
    assert.deepEqual(Array.from(loaded.trainX), Array.from(x));
    assert.equal(loaded.testY.length, 4);

    const tracked = records.filter((r) => r.type === 'param').map((r) => [r.key, r.value]);
    assert.deepEqual(Object.fromEntries(tracked)['dataset.train_count'], '9');
    assert.deepEqual(Object.fromEntries(tracked)['dataset.name'], 'idx');
    assert.ok(records.some((r) => r.type === 'tag' && r.key === 'metadd.dataset' && r.value === 'idx'));
    assert.deepEqual(records.filter((r) => r.type === 'artifact').map((r) => r.type === 'artifact' && r.path), ['meta.json', 'samples.png']);
    assert.deepEqual(progress.at(-1), [3, 3]);
  });

  it('dataset.zca whitens train and test with the training fit after normalisation, and says so in meta.json', async () => {
    await setupBackend();
    const src = tempDir('stage-zca-src');
    writeSource(src);
    const plain = tempDir('stage-plain');
    const white = tempDir('stage-zca');
    await datasetStage.run(fakeContext<DatasetParams>({ name: 'idx', path: src }, plain).ctx);
    const { ctx, records } = fakeContext<DatasetParams>({ name: 'idx', path: src, zca: { eps: 0.1 } }, white);
    await datasetStage.run(ctx);
    const a = loadDatasetArtifact(plain);
    const b = loadDatasetArtifact(white);
    assert.deepEqual(b.meta.zca, { eps: 0.1 });
    assert.equal(a.meta.zca, undefined);
    assert.deepEqual(b.trainY, a.trainY);
    // The whitened images are the normalised ones, centred on the training mean and multiplied by the fit's T.
    const d = 16;
    const fit = fitZca(a.trainX, 14, d, 0.1);
    for (const [normalised, whitened, n] of [[a.trainX, b.trainX, 14], [a.testX, b.testX, 4]] as const) {
      const expected = Float32Array.from(normalised);
      applyZca(expected, n, d, fit);
      assert.ok(maxAbsDiff(whitened, expected) < 1e-5, `${maxAbsDiff(whitened, expected)}`);
    }
    assert.ok(records.some((r) => r.type === 'param' && r.key === 'dataset.zca_eps' && r.value === '0.1'));
  });

  it('loadDatasetArtifact rejects arrays that disagree with meta.json', async () => {
    const src = tempDir('stage-src2');
    const out = tempDir('stage-out2');
    writeSource(src);
    await datasetStage.run(fakeContext<DatasetParams>({ name: 'idx', path: src }, out).ctx);
    const metaFile = join(out, 'meta.json');
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    writeFileSync(metaFile, JSON.stringify({ ...meta, train_count: 13 }));
    assert.throws(() => loadDatasetArtifact(out), /train_x\.npy: float32 \[14, 1, 4, 4\], expected float32 \[13, 1, 4, 4\]/);
  });
});

describe('normalisation and limits', () => {
  it('computes population statistics per channel and normalises with them', () => {
    // Two 1x2 RGB images: channel 0 = 0, 255, 0, 255; channel 1 constant 51; channel 2 = 0, 0, 0, 102.
    const x = Float32Array.from([0, 255, 51, 51, 0, 0, 0, 255, 51, 51, 0, 102]);
    const s = computeChannelStats(x, 3, 1, 2);
    assert.deepEqual(s.mean.map((v) => +v.toFixed(6)), [0.5, 0.2, 0.1]);
    // A constant channel gets std 1 instead of 0, so normalising it cannot divide by zero.
    assert.deepEqual(s.std.slice(0, 2).map((v) => +v.toFixed(6)), [0.5, 1]);
    assert.ok(Math.abs(s.std[2] - Math.sqrt(0.03)) < 1e-6);
    normalizeInPlace(x, 3, 1, 2, s);
    assert.deepEqual(Array.from(x.subarray(0, 4), (v) => +v.toFixed(5)), [-1, 1, 0, 0]);
  });

  it('keeps the first N images of each class in source order', () => {
    const y = Int32Array.from([1, 1, 0, 1, 2, 0, 0, 2]);
    assert.deepEqual(Array.from(classPrefixIndices(y, 3, 2)), [0, 1, 2, 4, 5, 7]);
    assert.deepEqual(Array.from(classPrefixIndices(y, 3, 1)), [0, 2, 4]);
    assert.deepEqual(Array.from(classPrefixIndices(y, 3, null)), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.throws(() => classPrefixIndices(y, 3, 0), /integer >= 1/);
    assert.throws(() => describeDatasetSource({ name: 'mnist', train_limit: 2.5 }), /integer >= 1/);
  });
});
