/**
 * Where a set's images lie in pixel space against the real classes, with no network in between: the
 * Pearson correlation of each image with the mean training image of its own class, and whether that
 * class mean is the one it correlates with most (a nearest-class-mean classifier). An architecture
 * without translation invariance (an MLP) learns about the layout these measure; the networks the
 * other diagnostics use do not show it. Plain float64 loops: a few thousand images of a few thousand
 * pixels, no tensors needed.
 */

export interface ClassMeans {
  /** Per class, its mean training image, centred and scaled to unit norm (a correlation is then a dot product). */
  unit: Float64Array[];
  /** Pixels per image (channels x height x width). */
  size: number;
}

export interface Layout {
  /** Mean over the set of each image's correlation with its own class's mean image. */
  ownCorrelation: number;
  /** Fraction of the set whose most correlated class mean is its own class's. */
  nearestMean: number;
}

/** The class means of `x` (N images of `size` pixels, labels `y` in [0, classes)); a class without images is rejected. */
export function classMeans(x: Float32Array, y: Int32Array, classes: number, size: number): ClassMeans {
  const sums = Array.from({ length: classes }, () => new Float64Array(size));
  const counts = new Array<number>(classes).fill(0);
  y.forEach((c, i) => {
    counts[c]++;
    const sum = sums[c];
    for (let j = 0, o = i * size; j < size; j++) sum[j] += x[o + j];
  });
  const unit = sums.map((sum, c) => {
    if (counts[c] === 0) throw new Error(`layout: class ${c} has no training image`);
    return centredUnit(sum, 0, size);
  });
  return { unit, size };
}

/** The layout measures of a set against the class means of the real training images. */
export function layoutAgainst(means: ClassMeans, set: { images: Float32Array; labels: Int32Array }): Layout {
  const n = set.labels.length;
  let own = 0;
  let nearest = 0;
  for (let i = 0; i < n; i++) {
    const image = centredUnit(set.images, i * means.size, means.size);
    const correlations = means.unit.map((m) => dot(image, m));
    const label = set.labels[i];
    own += correlations[label];
    if (correlations.every((r, c) => c === label || r < correlations[label])) nearest++;
  }
  return { ownCorrelation: n === 0 ? NaN : own / n, nearestMean: n === 0 ? NaN : nearest / n };
}

/** `v[offset, offset + size)` minus its mean, divided by its norm (a constant image stays zero). */
function centredUnit(v: ArrayLike<number>, offset: number, size: number): Float64Array {
  let mean = 0;
  for (let j = 0; j < size; j++) mean += v[offset + j];
  mean /= size;
  const out = new Float64Array(size);
  let norm = 0;
  for (let j = 0; j < size; j++) {
    out[j] = v[offset + j] - mean;
    norm += out[j] * out[j];
  }
  norm = Math.sqrt(norm);
  if (norm > 0) for (let j = 0; j < size; j++) out[j] /= norm;
  return out;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}
