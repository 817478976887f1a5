/**
 * Class-balanced deterministic prefixes: keep the first `limit` images of each class in source
 * order. The kept images stay in their source order (no regrouping by class), so a limit larger
 * than every class keeps the dataset unchanged.
 */
function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`image limit per class must be an integer >= 1 or null, got ${limit}`);
}

export function classPrefixIndices(labels: Int32Array, classes: number, limit: number | null | undefined): Int32Array {
  if (limit === null || limit === undefined) return Int32Array.from(labels.keys());
  checkLimit(limit);
  const seen = new Int32Array(classes);
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (seen[y] < limit) {
      seen[y]++;
      keep.push(i);
    }
  }
  return Int32Array.from(keep);
}

/** Images `indices` of an [N, ...] array whose images hold `perImage` values each. */
export function gatherImages(x: Float32Array, perImage: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * perImage);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    out.set(x.subarray(i * perImage, (i + 1) * perImage), k * perImage);
  }
  return out;
}

export function gatherLabels(y: Int32Array, indices: Int32Array): Int32Array {
  const out = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) out[k] = y[indices[k]];
  return out;
}

export function countPerClass(labels: Int32Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  return counts;
}

/** Per-class counts after a prefix limit, without materialising the subset. */
export function limitCounts(counts: number[], limit: number | null | undefined): number[] {
  if (limit === null || limit === undefined) return counts.slice();
  checkLimit(limit);
  return counts.map((c) => Math.min(c, limit));
}
