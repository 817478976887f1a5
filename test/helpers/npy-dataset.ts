import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../../src/store/npy.js';
import { createRng } from '../../src/util/rng.js';

/**
 * Writes a small separable npy dataset (train_x/train_y/test_x/test_y, NCHW uint8): class c is a bright
 * square at a class-specific position plus noise, so tiny networks can learn it.
 */
export function writeNpyDataset(
  dir: string,
  opts: { classes?: number; trainPerClass?: number; testPerClass?: number; size?: number; channels?: number; seed?: number } = {},
): string {
  const classes = opts.classes ?? 3;
  const size = opts.size ?? 8;
  const channels = opts.channels ?? 1;
  const rng = createRng(opts.seed ?? 1);
  mkdirSync(dir, { recursive: true });
  const make = (perClass: number): { x: Uint8Array; y: Int32Array } => {
    const n = perClass * classes;
    const x = new Uint8Array(n * channels * size * size);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % classes;
      y[i] = c;
      const ox = (c * 3) % (size - 2);
      const oy = Math.floor((c * 3) / (size - 2)) * 3 % (size - 2);
      for (let ch = 0; ch < channels; ch++) {
        for (let r = 0; r < size; r++) {
          for (let q = 0; q < size; q++) {
            const inside = r >= oy && r < oy + 3 && q >= ox && q < ox + 3;
            const v = (inside ? 200 : 30) + Math.floor(rng.next() * 40);
            x[((i * channels + ch) * size + r) * size + q] = v;
          }
        }
      }
    }
    return { x, y };
  };
  const train = make(opts.trainPerClass ?? 20);
  const test = make(opts.testPerClass ?? 10);
  writeNpy(join(dir, 'train_x.npy'), train.x, [train.y.length, channels, size, size]);
  writeNpy(join(dir, 'train_y.npy'), train.y, [train.y.length]);
  writeNpy(join(dir, 'test_x.npy'), test.x, [test.y.length, channels, size, size]);
  writeNpy(join(dir, 'test_y.npy'), test.y, [test.y.length]);
  return dir;
}
