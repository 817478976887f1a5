import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import { affinePlan, resample, translatePlan } from './sampler.js';

/**
 * Differentiable Siamese Augmentation (Zhao & Bilen 2021), following the reference `DiffAugment` in
 * single-op mode: each call draws ONE op family from the strategy and applies it to the whole batch.
 * Every op is differentiable w.r.t. the images (scale, rotate and crop through `resample`).
 *
 * Two draw modes, as in the reference:
 * - per-image (reference `seed = -1`, used when training networks): every image gets its own draw;
 * - siamese (reference `seed >= 0`, "batch mode"): one draw shared by every image, so two batches of any
 *   sizes transformed from the same seed get the same transformation (real vs synthetic in DC/DSA/DM).
 */
export type DsaOp = 'color' | 'crop' | 'cutout' | 'flip' | 'scale' | 'rotate';
export const DSA_OPS: readonly DsaOp[] = ['color', 'crop', 'cutout', 'flip', 'scale', 'rotate'];

/** The reference `ParamDiffAug` values (REFERENCE section 2). */
export interface DsaParams {
  probFlip: number;
  ratioScale: number;
  /** Degrees. */
  ratioRotate: number;
  ratioCropPad: number;
  ratioCutout: number;
  brightness: number;
  saturation: number;
  contrast: number;
}

export const DSA_DEFAULTS: Readonly<DsaParams> = {
  probFlip: 0.5,
  ratioScale: 1.2,
  ratioRotate: 15,
  ratioCropPad: 0.125,
  ratioCutout: 0.5,
  brightness: 1.0,
  saturation: 2.0,
  contrast: 0.5,
};

export const DSA_STRATEGY = 'color_crop_cutout_flip_scale_rotate';

/** Digits and letters have a handedness: the reference drops flip for MNIST-like data. */
const NO_FLIP = new Set(['mnist', 'fashion-mnist']);

/** The strategy the reference uses for a dataset (by the dataset artifact's `name`). */
export function dsaStrategyFor(dataset: string): string {
  return NO_FLIP.has(dataset.toLowerCase()) ? 'color_crop_cutout_scale_rotate' : DSA_STRATEGY;
}

export function parseStrategy(strategy: string): DsaOp[] {
  if (strategy === '' || strategy === 'none') return [];
  return strategy.split('_').map((s) => {
    if (!(DSA_OPS as readonly string[]).includes(s)) {
      throw new Error(`unknown DSA op '${s}' in strategy '${strategy}' (known: ${DSA_OPS.join(', ')})`);
    }
    return s as DsaOp;
  });
}

export interface DsaOptions {
  /** Underscore-separated op families (default `color_crop_cutout_flip_scale_rotate`). */
  strategy?: string;
  params?: Partial<DsaParams>;
  /** One draw for the whole batch (see the module comment). */
  siamese?: boolean;
}

/**
 * A drawn transformation. `values[r]` is the parameter row of image r; a siamese transform has a single
 * row applied to every image, whatever the batch size.
 */
export interface DsaTransform {
  op: DsaOp | 'none';
  siamese: boolean;
  values: number[][];
  params: DsaParams;
}

function uniformInt(rng: Rng, lo: number, hiInclusive: number): number {
  return lo + rng.int(hiInclusive - lo + 1);
}

/** Draw the op and its parameters for a batch of n h x w images; all randomness from `rng`. */
export function drawDsa(rng: Rng, n: number, h: number, w: number, opts: DsaOptions = {}): DsaTransform {
  const params: DsaParams = { ...DSA_DEFAULTS, ...opts.params };
  const ops = parseStrategy(opts.strategy ?? DSA_STRATEGY);
  const siamese = opts.siamese ?? false;
  if (ops.length === 0) return { op: 'none', siamese, values: [], params };
  const op = ops[rng.int(ops.length)];
  const rows = siamese ? 1 : n;
  // Each parameter is drawn for all rows before the next, like the reference's torch.rand(N) calls.
  const draw = (f: () => number): number[] => Array.from({ length: rows }, f);
  let columns: number[][];
  switch (op) {
    case 'color':
      columns = [draw(() => rng.next()), draw(() => rng.next()), draw(() => rng.next())];
      break;
    case 'crop': {
      const sh = Math.floor(h * params.ratioCropPad + 0.5);
      const sw = Math.floor(w * params.ratioCropPad + 0.5);
      columns = [draw(() => uniformInt(rng, -sh, sh)), draw(() => uniformInt(rng, -sw, sw))];
      break;
    }
    case 'cutout': {
      const ch = Math.floor(h * params.ratioCutout + 0.5);
      const cw = Math.floor(w * params.ratioCutout + 0.5);
      columns = [draw(() => rng.int(h + (1 - (ch % 2)))), draw(() => rng.int(w + (1 - (cw % 2))))];
      break;
    }
    case 'flip':
      columns = [draw(() => rng.next())];
      break;
    case 'scale': {
      const r = params.ratioScale;
      columns = [draw(() => rng.next() * (r - 1 / r) + 1 / r), draw(() => rng.next() * (r - 1 / r) + 1 / r)];
      break;
    }
    case 'rotate':
      columns = [draw(() => (rng.next() - 0.5) * 2 * (params.ratioRotate / 180) * Math.PI)];
      break;
  }
  const values = Array.from({ length: rows }, (_, r) => columns.map((col) => col[r]));
  return { op, siamese, values, params };
}

/** One value per image for parameter column `col` (siamese transforms repeat their single row). */
function perImage(t: DsaTransform, n: number, col: number): number[] {
  if (!t.siamese && t.values.length !== n) {
    throw new Error(`DSA transform drawn for ${t.values.length} images applied to ${n}`);
  }
  return Array.from({ length: n }, (_, i) => t.values[t.siamese ? 0 : i][col]);
}

function column(values: number[], n: number): tf.Tensor4D {
  return tf.tensor4d(values, [n, 1, 1, 1]);
}

/** Apply a drawn transformation to NHWC images. */
export function applyDsa(x: tf.Tensor4D, t: DsaTransform): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const p = t.params;
  return tf.tidy(() => {
    switch (t.op) {
      case 'none':
        return tf.clone(x);
      case 'color': {
        // brightness, then saturation (mean over channels), then contrast (mean over C, H, W).
        let y: tf.Tensor4D = tf.add(x, column(perImage(t, n, 0).map((b) => (b - 0.5) * p.brightness), n));
        const chanMean = tf.mean(y, 3, true);
        y = tf.add(tf.mul(tf.sub(y, chanMean), column(perImage(t, n, 1).map((s) => s * p.saturation), n)), chanMean);
        const imgMean = tf.mean(y, [1, 2, 3], true);
        return tf.add(tf.mul(tf.sub(y, imgMean), column(perImage(t, n, 2).map((v) => v + p.contrast), n)), imgMean);
      }
      case 'crop':
        return resample(x, translatePlan(perImage(t, n, 0), perImage(t, n, 1), n, h, w));
      case 'cutout': {
        const ch = Math.floor(h * p.ratioCutout + 0.5);
        const cw = Math.floor(w * p.ratioCutout + 0.5);
        const ox = perImage(t, n, 0);
        const oy = perImage(t, n, 1);
        const mask = new Float32Array(n * h * w).fill(1);
        for (let b = 0; b < n; b++) {
          const r0 = Math.max(0, ox[b] - Math.floor(ch / 2));
          const r1 = Math.min(h - 1, ox[b] - Math.floor(ch / 2) + ch - 1);
          const c0 = Math.max(0, oy[b] - Math.floor(cw / 2));
          const c1 = Math.min(w - 1, oy[b] - Math.floor(cw / 2) + cw - 1);
          for (let i = r0; i <= r1; i++) mask.fill(0, (b * h + i) * w + c0, (b * h + i) * w + c1 + 1);
        }
        return tf.mul(x, tf.tensor4d(mask, [n, h, w, 1]));
      }
      case 'flip': {
        const m = perImage(t, n, 0).map((r) => (r < p.probFlip ? 1 : 0));
        return tf.add(tf.mul(x, column(m.map((v) => 1 - v), n)), tf.mul(tf.reverse(x, 2), column(m, n)));
      }
      case 'scale': {
        const sx = perImage(t, n, 0);
        const sy = perImage(t, n, 1);
        const theta = new Float64Array(n * 6);
        for (let b = 0; b < n; b++) theta.set([sx[b], 0, 0, 0, sy[b], 0], b * 6);
        return resample(x, affinePlan(theta, n, h, w));
      }
      case 'rotate': {
        const th = perImage(t, n, 0);
        const theta = new Float64Array(n * 6);
        for (let b = 0; b < n; b++) {
          const co = Math.cos(th[b]);
          const si = Math.sin(th[b]);
          theta.set([co, -si, 0, si, co, 0], b * 6);
        }
        return resample(x, affinePlan(theta, n, h, w));
      }
    }
  }) as tf.Tensor4D;
}

/** Draw and apply in one go: `applyDsa(x, drawDsa(rng, N, H, W, opts))`. */
export function dsa(x: tf.Tensor4D, rng: Rng, opts: DsaOptions = {}): tf.Tensor4D {
  const [n, h, w] = x.shape;
  return applyDsa(x, drawDsa(rng, n, h, w, opts));
}
