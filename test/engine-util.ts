/** Shared helpers for the engine tests. */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/index.js';

/**
 * Relative error used throughout: max |a - b| / max(max |b|, 1e-6), i.e. the
 * worst absolute deviation measured against the reference's scale (b is the
 * reference). Robust to individual entries near zero, unlike elementwise
 * relative error.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} vs ${b.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-6);
}

/** Both test backends registered and initialised; leaves 'cpu' active. */
export async function initTestBackends(): Promise<void> {
  await initBackend('wasm');
  await initBackend('cpu');
}

/**
 * Runs `fn` on `backend` and returns its result(s) as plain Float64Arrays
 * (so they can be compared across backends after the tensors are gone).
 */
export function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Float64Array[] {
  const prev = tf.getBackend();
  // setBackend is async but switches synchronously to an already initialised
  // backend (initTestBackends initialised both), so no await is needed here.
  void tf.setBackend(backend);
  try {
    const outs = tf.tidy(() => {
      const out = fn();
      return Array.isArray(out) ? out : [out];
    });
    const values = outs.map((t) => Float64Array.from(t.dataSync()));
    tf.dispose(outs);
    return values;
  } finally {
    void tf.setBackend(prev);
  }
}

/** Deterministic pseudo-random values in [-1, 1) (xorshift), for inputs shared across backends. */
export function randomValues(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

export const sizeOf = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

/** Flattens several arrays into one (for comparing gradient lists). */
export function flat(parts: ArrayLike<number>[]): Float64Array {
  const n = parts.reduce((p, a) => p + a.length, 0);
  const out = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(Array.from(p), o);
    o += p.length;
  }
  return out;
}
