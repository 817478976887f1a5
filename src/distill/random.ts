import type { Rng } from '../util/rng.js';

/**
 * Indices of a class-balanced random subset: `ipc` distinct training images of each class, drawn
 * with `rng`, returned class by class (class 0 first), each class in draw order.
 */
export function randomSubsetIndices(labels: Int32Array, classes: number, ipc: number, rng: Rng): Int32Array {
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const out = new Int32Array(classes * ipc);
  for (let c = 0; c < classes; c++) {
    const pool = byClass[c];
    if (pool.length < ipc) throw new Error(`class ${c} has ${pool.length} training images, fewer than ipc = ${ipc}`);
    const perm = rng.child(`class-${c}`).permutation(pool.length);
    for (let j = 0; j < ipc; j++) out[c * ipc + j] = pool[perm[j]];
  }
  return out;
}

/** Copies the selected NCHW images into a new array. */
export function gatherImages(x: Float32Array, imageSize: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * imageSize);
  indices.forEach((idx, i) => out.set(x.subarray(idx * imageSize, (idx + 1) * imageSize), i * imageSize));
  return out;
}
