import type { ChannelStats, DatasetName } from './types.js';

/**
 * Published per-channel statistics (pixel / 255 units), the constants the reference
 * implementations (DatasetCondensation, mtt-distillation) normalise with. Every other source gets
 * statistics computed from its full training split (`computeChannelStats`).
 */
export const REFERENCE_STATS: Partial<Record<DatasetName, ChannelStats>> = {
  mnist: { mean: [0.1307], std: [0.3081] },
  'fashion-mnist': { mean: [0.2861], std: [0.353] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] },
  cifar100: { mean: [0.5071, 0.4866, 0.4409], std: [0.2673, 0.2564, 0.2762] },
};

/**
 * Per-channel mean and population standard deviation (ddof 0) of pixel / 255 over all images of
 * an NCHW array. Two passes in float64: a one-pass E[x^2] - E[x]^2 loses digits on 50M values.
 */
export function computeChannelStats(x: Float32Array, channels: number, height: number, width: number): ChannelStats {
  const plane = height * width;
  const n = x.length / (channels * plane);
  if (!Number.isInteger(n) || n === 0) {
    throw new Error(`computeChannelStats: ${x.length} values do not form a non-empty [N, ${channels}, ${height}, ${width}] array`);
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * channels + c) * plane;
      for (let p = 0; p < plane; p++) sum += x[base + p];
    }
    const m = sum / (n * plane);
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * channels + c) * plane;
      for (let p = 0; p < plane; p++) {
        const d = x[base + p] - m;
        sq += d * d;
      }
    }
    mean.push(m / 255);
    // A constant channel would divide by zero downstream; 1 leaves it centred and unscaled.
    const s = Math.sqrt(sq / (n * plane)) / 255;
    std.push(s > 0 ? s : 1);
  }
  return { mean, std };
}

/** In place: pixel (0..255 scale) -> (pixel / 255 - mean[c]) / std[c], NCHW. */
export function normalizeInPlace(x: Float32Array, channels: number, height: number, width: number, stats: ChannelStats): void {
  const plane = height * width;
  const n = x.length / (channels * plane);
  for (let c = 0; c < channels; c++) {
    const scale = 1 / (255 * stats.std[c]);
    const shift = stats.mean[c] / stats.std[c];
    for (let i = 0; i < n; i++) {
      const base = (i * channels + c) * plane;
      for (let p = 0; p < plane; p++) x[base + p] = x[base + p] * scale - shift;
    }
  }
}
