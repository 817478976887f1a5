import { createHash } from 'node:crypto';
import seedrandom from 'seedrandom';

/** A seeded random source. Every random draw in metadd comes from one of these, derived from the spec. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** A 31-bit integer seed for tfjs ops that take one (tf.randomNormal, ...). */
  seed(): number;
  /** Standard normal draw (Box-Muller). */
  normal(): number;
  /** A Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Int32Array;
  /** An independent child stream named by `label`; same parent seed + label gives the same stream. */
  child(label: string): Rng;
}

export function deriveSeed(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

export function createRng(seed: string | number): Rng {
  const base = String(seed);
  const prng = seedrandom(base);
  const rng: Rng = {
    next: () => prng.double(),
    int: (n) => Math.floor(prng.double() * n),
    seed: () => Math.floor(prng.double() * 0x7fffffff),
    normal: () => {
      const u = 1 - prng.double();
      const v = prng.double();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    permutation: (n) => {
      const p = new Int32Array(n);
      for (let i = 0; i < n; i++) p[i] = i;
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(prng.double() * (i + 1));
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
      return p;
    },
    child: (label) => createRng(deriveSeed(base, label)),
  };
  return rng;
}
