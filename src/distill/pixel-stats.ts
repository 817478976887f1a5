// No TensorFlow.js here: the random baseline's stage writes its set without loading it.

/** Statistics of an image set's pixels, in the dataset's normalised units (meta.json `pixels`). */
export interface PixelStats {
  mean: number;
  std: number;
  min: number;
  max: number;
  /**
   * Share of the pixels outside the range real pixels take; null when the dataset records no
   * normalisation. Counts a background pixel a hair below black as much as one far beyond it.
   */
  outside_real_range: number | null;
  /** Mean over all pixels of the distance beyond that range (0 inside it), normalised units; null likewise. */
  outside_distance: number | null;
}

/** What a dataset's meta.json says about how its pixels were transformed (src/data/artifact.ts). */
export interface PixelTransform {
  mean?: number[];
  std?: number[];
  /** Whitened (`dataset.zca`): no per-channel range applies. */
  zca?: { eps: number } | null;
}

/**
 * Per channel, the values a real pixel in [0, 1] takes once normalised: [(0 - mean) / std, (1 - mean) / std];
 * null when the dataset records no normalisation, or was whitened after it (no known range).
 */
export function realPixelRange(norm: PixelTransform): [number, number][] | null {
  const { mean, std } = norm;
  if (!mean || !std || norm.zca) return null;
  return mean.map((m, c) => [-m / std[c], (1 - m) / std[c]]);
}

/**
 * Where a set's pixels lie against the real ones. A distilled set whose contrast grows past anything a
 * real image has is the drift that batch-norm students do not survive (docs/results.md, MTT with
 * K = 200): recording it on every set makes that visible without opening images.npy.
 */
export function pixelStats(images: Float32Array, shape: readonly [number, number, number, number], norm: PixelTransform): PixelStats {
  const [, channels, height, width] = shape;
  const plane = height * width;
  const bounds = realPixelRange(norm);
  // A pixel on the bound after float32 rounding of the clamp is inside.
  const slack = 1e-5;
  let sum = 0;
  let sumSq = 0;
  let min = Infinity;
  let max = -Infinity;
  let outside = 0;
  let excess = 0;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (bounds) {
      const [lo, hi] = bounds[Math.floor(i / plane) % channels];
      if (v < lo - slack || v > hi + slack) {
        outside++;
        excess += v < lo ? lo - v : v - hi;
      }
    }
  }
  const n = images.length;
  const mean = n > 0 ? sum / n : 0;
  return {
    mean,
    std: n > 0 ? Math.sqrt(Math.max(0, sumSq / n - mean * mean)) : 0,
    min: n > 0 ? min : 0,
    max: n > 0 ? max : 0,
    outside_real_range: bounds ? (n > 0 ? outside / n : 0) : null,
    outside_distance: bounds ? (n > 0 ? excess / n : 0) : null,
  };
}

/** Logs a set's pixel statistics as metrics `<prefix>pixel_std`, `_min`, `_max`, `_outside_real_range`, `_outside_distance`. */
export function trackPixelStats(track: { metric(key: string, value: number, step?: number): void }, stats: PixelStats, step: number, prefix = ''): void {
  track.metric(`${prefix}pixel_std`, stats.std, step);
  track.metric(`${prefix}pixel_min`, stats.min, step);
  track.metric(`${prefix}pixel_max`, stats.max, step);
  if (stats.outside_real_range !== null) track.metric(`${prefix}pixel_outside_real_range`, stats.outside_real_range, step);
  if (stats.outside_distance !== null) track.metric(`${prefix}pixel_outside_distance`, stats.outside_distance, step);
}
