import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy, writeNpy } from '../store/npy.js';
import { writeImageGrid } from '../report/png.js';
import { pixelStats, type PixelStats, type PixelTransform } from './pixel-stats.js';

/** An image set (distilled, aligned, or a real subset) as the distill and metadd stages write it. */
export interface ImageSet {
  /** [N, C, H, W], normalised like the dataset. */
  images: Float32Array;
  labels: Int32Array;
  shape: [number, number, number, number];
  /** [N, classes] soft labels, for methods that relabel. */
  softLabels?: Float32Array;
  meta: Record<string, unknown>;
}

/** File names of an image set inside its artifact folder. */
export const IMAGE_SET_FILES = { images: 'images.npy', labels: 'labels.npy', softLabels: 'soft_labels.npy', meta: 'meta.json' } as const;

/**
 * Writes images.npy, labels.npy (+ soft_labels.npy), meta.json (with the pixels' statistics under
 * `pixels`) and grid.png (docs/artifacts.md); returns those statistics for the stage to log.
 */
export function writeImageSet(dir: string, set: ImageSet, norm: PixelTransform & { mean: number[]; std: number[]; classes: number }): PixelStats {
  const pixels = pixelStats(set.images, set.shape, norm);
  writeNpy(join(dir, IMAGE_SET_FILES.images), set.images, set.shape);
  writeNpy(join(dir, IMAGE_SET_FILES.labels), set.labels, [set.labels.length]);
  if (set.softLabels) writeNpy(join(dir, IMAGE_SET_FILES.softLabels), set.softLabels, [set.labels.length, norm.classes]);
  writeFileSync(join(dir, IMAGE_SET_FILES.meta), `${JSON.stringify({ ...set.meta, pixels }, null, 2)}\n`);
  writeImageGrid(join(dir, 'grid.png'), set.images, set.shape, { mean: norm.mean, std: norm.std, labels: set.labels });
  return pixels;
}

export function readImageSet(dir: string): ImageSet {
  const images = readNpy(join(dir, IMAGE_SET_FILES.images));
  const labels = readNpy(join(dir, IMAGE_SET_FILES.labels));
  if (images.dtype !== 'float32' || images.shape.length !== 4) {
    throw new Error(`${join(dir, 'images.npy')}: expected float32 [N, C, H, W], got ${images.dtype} [${images.shape.join(', ')}]`);
  }
  if (labels.dtype !== 'int32' || labels.shape[0] !== images.shape[0]) {
    throw new Error(`${join(dir, 'labels.npy')}: expected int32 [${images.shape[0]}], got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  const softPath = join(dir, IMAGE_SET_FILES.softLabels);
  const metaPath = join(dir, IMAGE_SET_FILES.meta);
  return {
    images: images.data as Float32Array,
    labels: labels.data as Int32Array,
    shape: images.shape as [number, number, number, number],
    softLabels: existsSync(softPath) ? (readNpy(softPath).data as Float32Array) : undefined,
    meta: existsSync(metaPath) ? (JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>) : {},
  };
}
