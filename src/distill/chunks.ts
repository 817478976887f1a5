/** Rows [start, end) of a set of n images, and their share (end - start) / n of it. */
export interface RowChunk {
  start: number;
  end: number;
  share: number;
}

/**
 * Consecutive chunks of at most `size` rows covering all n (one chunk when size <= 0). Losses that are
 * means over the images are computed chunk by chunk with each chunk's value and gradient weighted by its
 * share, which bounds memory by the chunk and gives the whole-set value.
 */
export function rowChunks(n: number, size: number): RowChunk[] {
  const step = size > 0 ? size : n;
  const out: RowChunk[] = [];
  for (let start = 0; start < n; start += step) {
    const end = Math.min(n, start + step);
    out.push({ start, end, share: (end - start) / n });
  }
  return out;
}
