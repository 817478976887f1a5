import * as tf from '@tensorflow/tfjs-core';
import { writeHeatmapOverlay } from '../../report/png.js';
import type { Rng } from '../../util/rng.js';
import { gatherRows, nchwToTensor } from '../layout.js';
import { gatherImages } from '../random.js';
import { auxOutputs, type AuxNet } from './aux.js';
import { featureRatios, type FeatureRatios } from './masks.js';

/** A set of NCHW images with labels, as the diagnostics read it. */
export interface ImageBatch {
  images: Float32Array;
  labels: Int32Array;
  /** [N, C, H, W]. */
  shape: [number, number, number, number];
}

export interface SetDiagnostics {
  images: number;
  /** Meta-feature and per-network heterogeneous-feature ratios (masks.ts). */
  ratios: FeatureRatios;
  /** Fraction of the images each auxiliary network classifies as their label. */
  accuracy: number[];
}

/** Forward passes in chunks of this many images (memory bound only; no gradient is kept). */
const CHUNK = 128;

/** Every network's normalised CAMs of a set ([N * H * W] each, image-major) and its correct count. */
export function setCams(nets: AuxNet[], set: ImageBatch): { cams: Float32Array[]; correct: number[] } {
  const [n, c, h, w] = set.shape;
  const size = c * h * w;
  const cams = nets.map(() => new Float32Array(n * h * w));
  const correct = nets.map(() => 0);
  for (let s = 0; s < n; s += CHUNK) {
    const e = Math.min(n, s + CHUNK);
    const idx = Array.from({ length: e - s }, (_, i) => s + i);
    tf.tidy(() => {
      const x = nchwToTensor(gatherRows(set.images, size, idx), idx.length, c, h, w);
      const y = tf.tensor1d(set.labels.subarray(s, e), 'int32');
      nets.forEach((net, k) => {
        const out = auxOutputs(net, x, y);
        cams[k].set(out.cams.dataSync(), s * h * w);
        correct[k] += tf.sum(tf.cast(tf.equal(tf.argMax(out.logits, 1), y), 'int32')).dataSync()[0];
      });
    });
  }
  return { cams, correct };
}

export function diagnoseSet(nets: AuxNet[], set: ImageBatch, tau: number): SetDiagnostics {
  const { ratios, ...rest } = diagnoseSetAt(nets, set, [tau]);
  return { ...rest, ratios: ratios[0] };
}

/** `diagnoseSet` at several thresholds, from one pass of CAMs (ratios in the order of `taus`). */
export function diagnoseSetAt(nets: AuxNet[], set: ImageBatch, taus: number[]): Omit<SetDiagnostics, 'ratios'> & { ratios: FeatureRatios[] } {
  const { cams, correct } = setCams(nets, set);
  const n = set.shape[0];
  return { images: n, ratios: taus.map((t) => featureRatios(cams, t)), accuracy: correct.map((k) => (n > 0 ? k / n : 0)) };
}

/**
 * The real images the diagnostics compare sets with: `perClass` training images of each class (all of
 * a class that has fewer), drawn from `rng`'s child 'diagnostics-real', so that the metadd stage and
 * `metadd diagnose` (given the stage's random source) draw the same ones.
 */
export function sampleRealImages(
  data: { trainX: Float32Array; trainY: Int32Array; meta: { classes: number; channels: number; height: number; width: number } },
  perClass: number,
  rng: Rng,
): ImageBatch {
  const { classes, channels, height, width } = data.meta;
  const draw = rng.child('diagnostics-real');
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  data.trainY.forEach((y, i) => byClass[y].push(i));
  const idx: number[] = [];
  for (let c = 0; c < classes; c++) {
    const perm = draw.child(`class-${c}`).permutation(byClass[c].length);
    for (let j = 0; j < Math.min(perClass, byClass[c].length); j++) idx.push(byClass[c][perm[j]]);
  }
  return {
    images: gatherImages(data.trainX, channels * height * width, Int32Array.from(idx)),
    labels: Int32Array.from(idx, (i) => data.trainY[i]),
    shape: [idx.length, channels, height, width],
  };
}

/** The first `perClass` images of each class (in set order), as indices. */
export function firstPerClass(labels: Int32Array, classes: number, perClass: number): number[] {
  const taken = new Array<number>(classes).fill(0);
  const out: number[] = [];
  labels.forEach((y, i) => {
    if (taken[y] < perClass) {
      taken[y]++;
      out.push(i);
    }
  });
  return out;
}

/**
 * A PNG with one row per image: the image, then each network's CAM overlaid (networks in the order
 * given). Images are the first `perClass` of each class.
 */
export function writeCamOverlay(
  path: string,
  nets: AuxNet[],
  set: ImageBatch,
  opts: { classes: number; perClass: number; mean: number[]; std: number[] },
): number {
  const idx = firstPerClass(set.labels, opts.classes, opts.perClass);
  if (idx.length === 0) return 0;
  const [, c, h, w] = set.shape;
  const sub: ImageBatch = {
    images: gatherRows(set.images, c * h * w, idx),
    labels: Int32Array.from(idx, (i) => set.labels[i]),
    shape: [idx.length, c, h, w],
  };
  const { cams } = setCams(nets, sub);
  const m = nets.length;
  const plane = h * w;
  const maps = new Float32Array(idx.length * m * plane);
  for (let i = 0; i < idx.length; i++) {
    for (let k = 0; k < m; k++) maps.set(cams[k].subarray(i * plane, (i + 1) * plane), (i * m + k) * plane);
  }
  writeHeatmapOverlay(path, sub.images, sub.shape, maps, { mean: opts.mean, std: opts.std, mapsPerImage: m, scale: 2 });
  return idx.length;
}
