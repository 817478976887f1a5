import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { colormap, renderImageGrid, writeHeatmapOverlay, writeImageGrid } from '../src/report/png.js';
import { tempDir } from './data-helpers.js';

function decode(file: string) {
  const png = PNG.sync.read(readFileSync(file));
  const at = (x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3));
  return { png, at };
}

/** Normalise 8-bit values the way the dataset stage does. */
function normalise(bytes: number[], channels: number, mean: number[], std: number[], plane: number): Float32Array {
  return Float32Array.from(bytes, (v, i) => {
    const c = Math.floor(i / plane) % channels;
    return (v / 255 - mean[c]) / std[c];
  });
}

describe('PNG image grids', () => {
  it('de-normalises grayscale images into a grid that decodes to the original pixels', () => {
    const dir = tempDir('png-gray');
    const mean = [0.1307];
    const std = [0.3081];
    // 5 images of 2x3, image i pixel p = 40 * i + 7 * p.
    const bytes = Array.from({ length: 5 * 6 }, (_, k) => 40 * Math.floor(k / 6) + 7 * (k % 6));
    const images = normalise(bytes, 1, mean, std, 6);
    const file = join(dir, 'grid.png');
    writeImageGrid(file, images, [5, 1, 2, 3], { mean, std, cols: 3, padding: 1, background: 9 });
    const { png, at } = decode(file);
    assert.equal(png.colorType, 0);
    // 3 columns of width 3 and 2 rows of height 2, with 1 pixel of padding around each tile.
    assert.deepEqual([png.width, png.height], [1 + 3 * 4, 1 + 2 * 3]);
    assert.deepEqual(at(0, 0), [9, 9, 9]);
    // Image 4 (row 1, column 1) starts at x = 1 + 4, y = 1 + 3; its pixel (x=2, y=1) is p = 5.
    assert.deepEqual(at(5 + 2, 4 + 1), [195, 195, 195]); // 40 * 4 + 7 * 5
    // The missing 6th cell keeps the background.
    assert.deepEqual(at(9 + 1, 4), [9, 9, 9]);
    for (let i = 0; i < 5; i++) {
      const x0 = 1 + (i % 3) * 4;
      const y0 = 1 + Math.floor(i / 3) * 3;
      for (let p = 0; p < 6; p++) assert.equal(at(x0 + (p % 3), y0 + Math.floor(p / 3))[0], bytes[i * 6 + p]);
    }
  });

  it('writes RGB, one row per class with labels, upscaled, values clamped', () => {
    const dir = tempDir('png-rgb');
    const mean = [0.5, 0.4, 0.3];
    const std = [0.2, 0.25, 0.3];
    // 3 images of 1x1 RGB; image 1 has an out-of-range red (300) and a negative blue.
    const bytes = [10, 20, 30, 300, 128, -20, 0, 255, 77];
    const images = normalise(bytes, 3, mean, std, 1);
    const file = join(dir, 'rgb.png');
    writeImageGrid(file, images, [3, 3, 1, 1], { mean, std, labels: [2, 0, 2], classes: 4, scale: 2, padding: 0 });
    const { png, at } = decode(file);
    assert.equal(png.colorType, 2);
    // 4 class rows, 2 columns (the largest class), 2x2 pixels per image.
    assert.deepEqual([png.width, png.height], [4, 8]);
    assert.deepEqual(at(0, 0), [255, 128, 0]); // class 0: image 1, clamped
    assert.deepEqual(at(1, 1), [255, 128, 0]);
    assert.deepEqual(at(2, 0), [255, 255, 255]); // class 0 has one image; class 1 none
    assert.deepEqual(at(0, 2), [255, 255, 255]);
    assert.deepEqual(at(0, 4), [10, 20, 30]); // class 2: images 0 and 2 in input order
    assert.deepEqual(at(3, 5), [0, 255, 77]);
  });

  it('rejects inconsistent shapes and labels', () => {
    const images = new Float32Array(12);
    assert.throws(() => renderImageGrid(images, [2, 2, 1, 3], { mean: [0], std: [1] }), /2 channels, expected 1/);
    assert.throws(() => renderImageGrid(images, [3, 1, 2, 3], { mean: [0], std: [1] }), /do not match shape/);
    assert.throws(() => renderImageGrid(images, [2, 1, 2, 3], { mean: [0], std: [1], labels: [0, 5], classes: 3 }), /label 5 of image 1/);
    assert.throws(() => renderImageGrid(new Float32Array(6), [2, 3, 1, 1], { mean: [0, 0], std: [1, 1] }), /mean has 2 values, expected 3/);
  });
});

describe('heat-map overlays', () => {
  it('maps [0, 1] to jet and viridis end colours', () => {
    assert.deepEqual(colormap('jet', 0), [0, 0, 128]);
    assert.deepEqual(colormap('jet', 0.5), [128, 255, 128]);
    assert.deepEqual(colormap('jet', 1), [128, 0, 0]);
    assert.deepEqual(colormap('jet', 7), [128, 0, 0]);
    assert.deepEqual(colormap('viridis', 0), [68, 1, 84]); // #440154
    assert.deepEqual(colormap('viridis', 1), [253, 231, 37]); // #FDE725
    assert.deepEqual(colormap('viridis', 0.5), [33, 145, 140]); // #21918C
  });

  it('puts the image and its blended maps side by side, one row per image', () => {
    const dir = tempDir('png-heat');
    const mean = [0.5];
    const std = [0.5];
    // 2 grayscale images of 1x2 pixels, values 0 and 255 / 100 and 200; 2 maps per image.
    const px = [0, 255, 100, 200];
    const images = Float32Array.from(px, (v) => (v / 255 - 0.5) / 0.5);
    const maps = Float32Array.from([0, 1, 1, 0, 0.5, 0.5, 1, 1]);
    const file = join(dir, 'cam.png');
    writeHeatmapOverlay(file, images, [2, 1, 1, 2], maps, { mean, std, mapsPerImage: 2, alpha: 0.5, padding: 0 });
    const { png, at } = decode(file);
    assert.equal(png.colorType, 2);
    assert.deepEqual([png.width, png.height], [6, 2]);
    assert.deepEqual(at(0, 0), [0, 0, 0]); // plain image
    assert.deepEqual(at(1, 0), [255, 255, 255]);
    const blend = (v: number, c: number[]) => c.map((k) => Math.round(0.5 * v + 0.5 * k));
    assert.deepEqual(at(2, 0), blend(0, [0, 0, 128])); // image 0, map 0, value 0
    assert.deepEqual(at(3, 0), blend(255, [128, 0, 0])); // value 1
    assert.deepEqual(at(4, 0), blend(0, [128, 0, 0])); // map 1
    assert.deepEqual(at(3, 1), blend(200, [128, 255, 128])); // image 1, map 0, value 0.5
    assert.throws(() => writeHeatmapOverlay(file, images, [2, 1, 1, 2], maps.subarray(1), { mean, std, mapsPerImage: 2 }), /7 map values, expected 8/);
  });
});
