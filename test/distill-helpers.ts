import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeDatasetArtifact } from '../src/data/artifact.js';
import type { ArtifactView, StageContext, StageKind } from '../src/stages/contract.js';
import type { TrackRecord } from '../src/tracking/records.js';
import { initBackend } from '../src/engine/backend.js';
import { makeRealData, type RealData } from '../src/distill/real-data.js';
import type { MethodContext } from '../src/distill/method.js';
import { createRng } from '../src/util/rng.js';

/**
 * tfjs' pure-JS backend: the exact reference the distillation tests compare against. Through the
 * engine, because tfjs-core's CommonJS build registers no gradients (the engine registers them).
 */
export async function useCpu(): Promise<void> {
  await initBackend('cpu');
}

/** The backend metadd runs on by default here (one thread per process). */
export async function useWasm(): Promise<void> {
  await initBackend('wasm');
}

/**
 * A small generated dataset: `classes` classes of `perClass` single-channel h x w images. Class c is a
 * bright square at a class-specific position plus Gaussian noise, so class means differ and a network
 * can tell the classes apart.
 */
export function tinyData(opts: { classes?: number; perClass?: number; size?: number; channels?: number; seed?: string } = {}): RealData {
  const classes = opts.classes ?? 3;
  const perClass = opts.perClass ?? 12;
  const size = opts.size ?? 8;
  const channels = opts.channels ?? 1;
  const rng = createRng(opts.seed ?? 'tiny-data');
  const n = classes * perClass;
  const plane = size * size;
  const x = new Float32Array(n * channels * plane);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    // Interleave the classes, as a real training set would be.
    const c = i % classes;
    y[i] = c;
    const r0 = (c * 3) % (size - 2);
    const c0 = (c * 5 + 1) % (size - 2);
    for (let ch = 0; ch < channels; ch++) {
      for (let r = 0; r < size; r++) {
        for (let col = 0; col < size; col++) {
          const inside = r >= r0 && r < r0 + 3 && col >= c0 && col < c0 + 3;
          x[((i * channels + ch) * size + r) * size + col] = (inside ? 1.5 : -0.5) + 0.3 * rng.normal();
        }
      }
    }
  }
  return makeRealData(x, y, { classes, channels, height: size, width: size });
}

export function methodContext(real: RealData, ipc: number): MethodContext {
  return { real, ipc, log: () => undefined };
}

export function bytesEqual(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  const x = new Float32Array(Array.from(a));
  const y = new Float32Array(Array.from(b));
  return Buffer.from(x.buffer).equals(Buffer.from(y.buffer));
}

/** Central finite difference of a scalar function of a Float32Array along one coordinate, in float64 steps. */
export function finiteDifference(f: (x: Float32Array) => number, x: Float32Array, index: number, h: number): number {
  const plus = Float32Array.from(x);
  const minus = Float32Array.from(x);
  plus[index] += h;
  minus[index] -= h;
  return (f(plus) - f(minus)) / (plus[index] - minus[index]);
}

/** A stage context over temp folders that records what the stage tracks (no worker, no store). */
export function stageContext<P>(
  kind: StageKind,
  params: P,
  inputs: Record<string, ArtifactView>,
  root: string,
  seed = 'stage-seed',
): { ctx: StageContext<P>; records: TrackRecord[]; outDir: string } {
  const outDir = mkdtempSync(join(root, `${kind}-out-`));
  const scratchDir = mkdtempSync(join(root, `${kind}-scratch-`));
  const records: TrackRecord[] = [];
  const ctx: StageContext<P> = {
    key: `${kind}-${seed}`,
    kind,
    params,
    inputs,
    outDir,
    scratchDir,
    rng: createRng(seed),
    progress: { update: () => undefined },
    track: {
      param: (key, value) => records.push({ type: 'param', key, value: String(value) }),
      metric: (key, value, step = 0) => records.push({ type: 'metric', key, value, step, timestamp: 0 }),
      tag: (key, value) => records.push({ type: 'tag', key, value }),
      artifact: (path) => records.push({ type: 'artifact', path }),
    },
    backend: tf.getBackend(),
    signal: new AbortController().signal,
    log: () => undefined,
  };
  return { ctx, records, outDir };
}

/** A finished artifact folder as a stage input. */
export function viewOf(kind: StageKind, dir: string, key = `${kind}-${dir}`): ArtifactView {
  const metaFile = join(dir, 'meta.json');
  return { key, kind, dir, meta: existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, unknown>) : {} };
}

/** Writes tinyData train/test sets as a dataset artifact in `dir` (mean 0, std 1: the values are already normalised). */
export function writeTinyDataset(dir: string, opts: { classes?: number; perClass?: number; size?: number } = {}): RealData {
  const train = tinyData({ ...opts, seed: 'tiny-train' });
  const test = tinyData({ ...opts, perClass: 4, seed: 'tiny-test' });
  mkdirSync(dir, { recursive: true });
  writeDatasetArtifact(dir, {
    trainX: train.x,
    trainY: train.y,
    testX: test.x,
    testY: test.y,
    meta: {
      name: 'tiny',
      classes: train.classes,
      class_names: Array.from({ length: train.classes }, (_, c) => `c${c}`),
      channels: train.channels,
      height: train.height,
      width: train.width,
      mean: [0],
      std: [1],
      train_count: train.y.length,
      test_count: test.y.length,
      digest: 'tiny',
    },
  });
  return train;
}
