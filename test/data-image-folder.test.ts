import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { naturalCompare } from '../src/data/files.js';
import { describeDatasetSource, loadRawDataset } from '../src/data/index.js';
import { pngBytes, tempDir, throwsNaming } from './data-helpers.js';

const W = 3;
const H = 2;

/** A W x H image with every pixel = value (gray) or [value, value + 1, value + 2] (RGB). */
function solid(value: number, channels: 1 | 3): Buffer {
  return pngBytes(W, H, channels, (x, y) => (channels === 1 ? [value + x + 10 * y] : [value, value + 1, value + 2]));
}

function put(file: string, bytes: Buffer | string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, bytes);
}

describe('image folders', () => {
  it('sorts file names naturally and independently of locale', () => {
    const names = ['img_10.png', 'img_2.png', 'img_1.png', 'b.png', 'a.png', 'img_02.png'];
    assert.deepEqual(names.sort(naturalCompare), ['a.png', 'b.png', 'img_1.png', 'img_2.png', 'img_02.png', 'img_10.png']);
  });

  it('reads train/<class> and test/<class> grayscale PNGs class by class, in natural order', () => {
    const root = tempDir('folder-gray');
    put(join(root, 'train', 'zebra', 'img_10.png'), solid(30, 1));
    put(join(root, 'train', 'zebra', 'img_2.png'), solid(20, 1));
    put(join(root, 'train', 'ant', 'x.png'), solid(10, 1));
    put(join(root, 'train', 'ant', 'notes.txt'), 'ignored');
    put(join(root, 'test', 'zebra', 't.png'), solid(40, 1));
    const d = loadRawDataset({ name: 'image-folder', path: root });
    assert.deepEqual(d.classNames, ['ant', 'zebra']);
    assert.deepEqual([d.channels, d.height, d.width], [1, H, W]);
    assert.deepEqual(Array.from(d.trainY), [0, 1, 1]);
    // First pixel of each image: ant/x (10), zebra/img_2 (20), zebra/img_10 (30).
    assert.deepEqual([0, 1, 2].map((i) => d.trainX[i * W * H]), [10, 20, 30]);
    assert.deepEqual(Array.from(d.trainX.subarray(0, W * H)), [10, 11, 12, 20, 21, 22]);
    assert.deepEqual(Array.from(d.testY), [1]);
    const info = describeDatasetSource({ name: 'image-folder', path: root });
    assert.deepEqual(info.trainPerClass, [1, 2]);
    assert.deepEqual(info.testPerClass, [0, 1]);
    assert.equal(info.channels, 1);
    assert.equal(info.digest, d.digest);
  });

  it('uses 3 channels as soon as one image is in colour, and converts on request', () => {
    const root = tempDir('folder-rgb');
    put(join(root, 'train', 'a', '1.png'), solid(100, 3));
    put(join(root, 'train', 'b', '1.png'), solid(50, 1));
    put(join(root, 'val', 'a', '1.png'), solid(7, 3));
    const d = loadRawDataset({ name: 'image-folder', path: root });
    assert.equal(d.channels, 3);
    const plane = W * H;
    assert.deepEqual([d.trainX[0], d.trainX[plane], d.trainX[2 * plane]], [100, 101, 102]);
    // The grayscale image is replicated across R, G and B.
    assert.deepEqual([d.trainX[3 * plane], d.trainX[4 * plane], d.trainX[5 * plane]], [50, 50, 50]);
    assert.deepEqual(Array.from(d.testY), [0]); // val/ stands in for test/
    const gray = loadRawDataset({ name: 'image-folder', path: root, image_channels: 1 });
    assert.equal(gray.channels, 1);
    assert.ok(Math.abs(gray.trainX[0] - (0.299 * 100 + 0.587 * 101 + 0.114 * 102)) < 1e-4);
    assert.equal(gray.trainX[plane], 50);
    assert.equal(describeDatasetSource({ name: 'image-folder', path: root }).channels, 3);
  });

  it('reads the Tiny-ImageNet layout with val_annotations.txt and words.txt', () => {
    const root = tempDir('tiny');
    put(join(root, 'train', 'n02', 'images', 'n02_1.png'), solid(1, 3));
    put(join(root, 'train', 'n02', 'images', 'n02_0.png'), solid(2, 3));
    put(join(root, 'train', 'n02', 'n02_boxes.txt'), 'n02_0.JPEG\t0\t0\t2\t2\n');
    put(join(root, 'train', 'n01', 'images', 'n01_0.png'), solid(3, 3));
    put(join(root, 'val', 'images', 'val_10.png'), solid(4, 3));
    put(join(root, 'val', 'images', 'val_2.png'), solid(5, 3));
    put(join(root, 'val', 'val_annotations.txt'), 'val_10.png\tn01\t0\t0\t2\t2\nval_2.png\tn02\t1\t1\t2\t2\n');
    put(join(root, 'test', 'images', 'test_0.png'), solid(6, 3)); // unlabelled, never read
    put(join(root, 'words.txt'), 'n01\tgoldfish, Carassius auratus\nn02\tEuropean fire salamander\nn03\tunused\n');
    const d = loadRawDataset({ name: 'image-folder', path: root });
    assert.deepEqual(d.classNames, ['goldfish, Carassius auratus', 'European fire salamander']);
    assert.deepEqual(Array.from(d.trainY), [0, 1, 1]);
    const plane = W * H;
    assert.deepEqual([0, 1, 2].map((i) => d.trainX[i * 3 * plane]), [3, 2, 1]);
    // val_2 sorts before val_10 and belongs to n02.
    assert.deepEqual(Array.from(d.testY), [1, 0]);
    assert.deepEqual([d.testX[0], d.testX[3 * plane]], [5, 4]);
    const info = describeDatasetSource({ name: 'image-folder', path: root });
    assert.deepEqual(info.trainPerClass, [1, 2]);
    assert.deepEqual(info.testPerClass, [1, 1]);
    assert.equal(info.digest, d.digest);

    put(join(root, 'val', 'val_annotations.txt'), 'val_10.png\tn01\nval_2.png\tn09\n');
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'val', 'val_annotations.txt'), /line 2: class n09 has no folder under train/);
    put(join(root, 'val', 'val_annotations.txt'), 'val_10.png\tn01\n');
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'val', 'images', 'val_2.png'), /has no line in/);
    put(join(root, 'val', 'val_annotations.txt'), 'val_10.png\tn01\nval_2.png\tn02\nval_3.png\tn02\n');
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'val', 'images', 'val_3.png'), /not found \(listed on line 3/);
  });

  it('decodes JPEG images (Tiny-ImageNet ships .JPEG) and names a corrupt one', () => {
    const jpegOf = (value: number): Buffer => {
      const data = Buffer.alloc(W * H * 4);
      for (let p = 0; p < W * H; p++) data.set([value, value, value, 255], 4 * p);
      return Buffer.from(jpeg.encode({ data, width: W, height: H }, 100).data);
    };
    const root = tempDir('jpeg');
    put(join(root, 'train', 'n01', 'images', 'n01_0.JPEG'), jpegOf(200));
    put(join(root, 'train', 'n02', 'images', 'n02_0.JPEG'), jpegOf(40));
    put(join(root, 'val', 'images', 'val_0.JPEG'), jpegOf(120));
    put(join(root, 'val', 'val_annotations.txt'), 'val_0.JPEG\tn02\n');
    const d = loadRawDataset({ name: 'image-folder', path: root });
    // jpeg-js writes three YCbCr components even for a grey picture, so this is a colour source.
    assert.deepEqual([d.height, d.width, d.channels], [H, W, 3]);
    assert.deepEqual(Array.from(d.trainY), [0, 1]);
    const plane = 3 * W * H;
    // Quality-100 JPEG of a flat colour decodes to within a grey level or two.
    assert.ok(Math.abs(d.trainX[0] - 200) <= 2 && Math.abs(d.trainX[plane] - 40) <= 2 && Math.abs(d.testX[0] - 120) <= 2);
    assert.equal(describeDatasetSource({ name: 'image-folder', path: root }).digest, d.digest);
    const file = join(root, 'train', 'n01', 'images', 'n01_0.JPEG');
    put(file, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), file, /corrupt JPEG/);
  });

  it('names the file or folder that breaks the layout', () => {
    const root = tempDir('folder-bad');
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'train'), /not found \(expected an image folder/);
    put(join(root, 'train', 'a', '0.png'), solid(1, 1));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'test'), /not found/);
    put(join(root, 'test', 'a', '0.png'), solid(1, 1));
    put(join(root, 'test', 'b', '0.png'), solid(1, 1));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'test', 'b'), /not present under train/);
    put(join(root, 'train', 'b', '0.png'), pngBytes(4, 4, 1, () => [0]));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'train', 'b', '0.png'), /image is 4x4, expected 3x2/);
    const good = solid(9, 1);
    put(join(root, 'train', 'b', '0.png'), good.subarray(0, good.length - 20));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'train', 'b', '0.png'), /corrupt PNG/);
    put(join(root, 'train', 'b', '0.png'), 'not an image');
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'train', 'b', '0.png'), /not a PNG image/);
    mkdirSync(join(root, 'train', 'c'));
    throwsNaming(() => loadRawDataset({ name: 'image-folder', path: root }), join(root, 'train', 'c'), /no images/);
  });
});
