import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy, writeNpy } from '../store/npy.js';

/**
 * Driver checkpoints in a stage's scratch directory: `ckpt-<iteration>/` folders (images, momentum,
 * state) and a `latest` pointer replaced atomically, so a crash while writing leaves the previous
 * checkpoint intact.
 */
export interface DriverCheckpoint {
  /** The next iteration to run. */
  iteration: number;
  /** Identifies the run the checkpoint belongs to (method, parameters, seed); a mismatch is ignored. */
  fingerprint: string;
  /** NCHW images and momentum buffer, and the set's shape. */
  images: Float32Array;
  momentum: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** Logged curve points so far, re-emitted on resume (the records of an interrupted attempt are gone). */
  curve: CurvePoint[];
}

export interface CurvePoint {
  key: string;
  value: number;
  step: number;
}

interface StateFile {
  iteration: number;
  fingerprint: string;
  shape: [number, number, number, number];
  curve: CurvePoint[];
}

const POINTER = 'latest';

export function saveCheckpoint(dir: string, ck: DriverCheckpoint): void {
  mkdirSync(dir, { recursive: true });
  const name = `ckpt-${ck.iteration}`;
  const tmp = join(dir, `${name}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeNpy(join(tmp, 'images.npy'), ck.images, ck.shape);
  writeNpy(join(tmp, 'momentum.npy'), ck.momentum, ck.shape);
  writeNpy(join(tmp, 'labels.npy'), ck.labels, [ck.labels.length]);
  const state: StateFile = { iteration: ck.iteration, fingerprint: ck.fingerprint, shape: ck.shape, curve: ck.curve };
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(state));
  const final = join(dir, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeFileSync(join(dir, `${POINTER}.tmp`), name);
  renameSync(join(dir, `${POINTER}.tmp`), join(dir, POINTER));
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('ckpt-') && entry !== name) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

/** The latest checkpoint in `dir` for this fingerprint, or undefined. */
export function loadCheckpoint(dir: string, fingerprint: string): DriverCheckpoint | undefined {
  const pointer = join(dir, POINTER);
  if (!existsSync(pointer)) return undefined;
  const folder = join(dir, readFileSync(pointer, 'utf8').trim());
  if (!existsSync(join(folder, 'state.json'))) return undefined;
  const state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) as StateFile;
  if (state.fingerprint !== fingerprint) return undefined;
  const images = readNpy(join(folder, 'images.npy'));
  const momentum = readNpy(join(folder, 'momentum.npy'));
  const labels = readNpy(join(folder, 'labels.npy'));
  return {
    iteration: state.iteration,
    fingerprint: state.fingerprint,
    shape: state.shape,
    curve: state.curve,
    images: images.data as Float32Array,
    momentum: momentum.data as Float32Array,
    labels: labels.data as Int32Array,
  };
}
