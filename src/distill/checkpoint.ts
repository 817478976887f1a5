import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy, writeNpy } from '../store/npy.js';
import type { ImageOptimizer, LearnedState, OptimizerState } from './method.js';

/**
 * Driver checkpoints in a stage's scratch directory: `ckpt-<iteration>[-<step>]/` folders (images,
 * optimiser buffers, learned variables, state, and inside an iteration the method's iteration state in
 * `method/`) and a `latest` pointer replaced atomically, so a crash while writing leaves the previous
 * checkpoint intact.
 */
export interface DriverCheckpoint {
  /** The next iteration to run (the one in progress when `step` > 0). */
  iteration: number;
  /**
   * Image updates of `iteration` already done; 0 (or absent, in checkpoints written before steps
   * existed) at an iteration boundary. When > 0 the checkpoint holds the method's iteration state.
   */
  step?: number;
  /** Inside an iteration: the running per-step sums of its logged terms (the driver's `iterTerms`). */
  stepTerms?: Record<string, number>;
  /** Identifies the run the checkpoint belongs to (method, parameters, seed); a mismatch is ignored. */
  fingerprint: string;
  /** NCHW images, and the set's shape. */
  images: Float32Array;
  /** The pixel optimiser's state (NCHW buffers of `shape`). */
  optimizer: OptimizerState;
  /** The method's learned variables with their momentum buffers. */
  learned: Record<string, LearnedState>;
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
  /** Absent in checkpoints written before optimiser kinds existed: SGD with `momentum.npy`. */
  optimizer?: OptimizerFiles;
  learned?: Record<string, number[]>;
  /** Absent in checkpoints written before steps existed: an iteration boundary. */
  step?: number;
  step_terms?: Record<string, number>;
}

/** Folder of a checkpoint that holds the method's iteration state. */
const METHOD_STATE = 'method';

const POINTER = 'latest';

/** State written before optimiser kinds existed: SGD's momentum alone, as `momentum.npy`. */
const LEGACY_SGD: OptimizerFiles = { kind: 'sgd', step: 0, buffers: ['momentum'] };

/**
 * File name of an optimiser buffer, in checkpoints and in a stage's `state/` folder: SGD's momentum
 * keeps the name `momentum.npy` the metadd stage reads; other kinds are prefixed (`adam_m.npy`).
 */
export function optimizerBufferFile(kind: ImageOptimizer['kind'], buffer: string): string {
  return kind === 'sgd' ? `${buffer}.npy` : `${kind}_${buffer}.npy`;
}

/** What describes an optimiser state beside its buffer files (in `optimizer.json`, or a checkpoint's state.json). */
interface OptimizerFiles {
  kind: ImageOptimizer['kind'];
  step: number;
  buffers: string[];
}

/** Writes each buffer of `state` into `dir` as one .npy; returns what reads them back. */
function writeOptimizerBuffers(dir: string, state: OptimizerState, shape: number[]): OptimizerFiles {
  for (const [name, data] of Object.entries(state.buffers)) writeNpy(join(dir, optimizerBufferFile(state.kind, name)), data, shape);
  return { kind: state.kind, step: state.step, buffers: Object.keys(state.buffers) };
}

function readOptimizerBuffers(dir: string, files: OptimizerFiles): OptimizerState {
  const buffers: Record<string, Float32Array> = {};
  for (const name of files.buffers) buffers[name] = readNpy(join(dir, optimizerBufferFile(files.kind, name))).data as Float32Array;
  return { kind: files.kind, step: files.step, buffers };
}

/** Writes each learned variable and its momentum into `dir` (`learned_<name>.npy`, `learned_<name>_momentum.npy`); returns their shapes. */
function writeLearnedFiles(dir: string, learned: Record<string, LearnedState>): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const [name, l] of Object.entries(learned)) {
    writeNpy(join(dir, `learned_${name}.npy`), l.value, l.shape);
    writeNpy(join(dir, `learned_${name}_momentum.npy`), l.momentum, l.shape);
    shapes[name] = l.shape;
  }
  return shapes;
}

function readLearnedFiles(dir: string, shapes: Record<string, number[]>): Record<string, LearnedState> {
  const out: Record<string, LearnedState> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    out[name] = {
      shape,
      value: readNpy(join(dir, `learned_${name}.npy`)).data as Float32Array,
      momentum: readNpy(join(dir, `learned_${name}_momentum.npy`)).data as Float32Array,
    };
  }
  return out;
}

/** Writes `state` into `dir` as one .npy per buffer plus `optimizer.json` ({ kind, step, buffers }). */
export function writeOptimizerState(dir: string, state: OptimizerState, shape: number[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'optimizer.json'), `${JSON.stringify(writeOptimizerBuffers(dir, state, shape))}\n`);
}

/**
 * The optimiser state written by `writeOptimizerState`, or, in a folder holding only `momentum.npy`
 * (written before optimiser kinds existed), SGD's. Undefined when there is neither.
 */
export function readOptimizerState(dir: string): OptimizerState | undefined {
  const jsonFile = join(dir, 'optimizer.json');
  if (existsSync(jsonFile)) return readOptimizerBuffers(dir, JSON.parse(readFileSync(jsonFile, 'utf8')) as OptimizerFiles);
  if (existsSync(join(dir, 'momentum.npy'))) return readOptimizerBuffers(dir, LEGACY_SGD);
  return undefined;
}

/** Writes learned variables as `learned_<name>.npy` and `learned_<name>_momentum.npy`, plus `learned.json` (names and shapes). */
export function writeLearnedState(dir: string, learned: Record<string, LearnedState>): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'learned.json'), `${JSON.stringify(writeLearnedFiles(dir, learned))}\n`);
}

/** What `writeLearnedState` wrote into `dir` ({} when it wrote nothing there). */
export function readLearnedState(dir: string): Record<string, LearnedState> {
  const jsonFile = join(dir, 'learned.json');
  if (!existsSync(jsonFile)) return {};
  return readLearnedFiles(dir, JSON.parse(readFileSync(jsonFile, 'utf8')) as Record<string, number[]>);
}

/**
 * Writes `ck` and points `latest` at it. Inside an iteration (`ck.step` > 0), `writeMethodState` must
 * write the method's iteration state into the empty folder it is given.
 */
export function saveCheckpoint(dir: string, ck: DriverCheckpoint, writeMethodState?: (folder: string) => void): void {
  const step = ck.step ?? 0;
  if (step > 0 && !writeMethodState) throw new Error(`a checkpoint inside iteration ${ck.iteration} (step ${step}) needs the method's iteration state`);
  mkdirSync(dir, { recursive: true });
  const name = step > 0 ? `ckpt-${ck.iteration}-${step}` : `ckpt-${ck.iteration}`;
  const tmp = join(dir, `${name}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeNpy(join(tmp, 'images.npy'), ck.images, ck.shape);
  writeNpy(join(tmp, 'labels.npy'), ck.labels, [ck.labels.length]);
  const state: StateFile = {
    iteration: ck.iteration,
    fingerprint: ck.fingerprint,
    shape: ck.shape,
    curve: ck.curve,
    optimizer: writeOptimizerBuffers(tmp, ck.optimizer, ck.shape),
    learned: writeLearnedFiles(tmp, ck.learned),
    step,
    step_terms: step > 0 ? (ck.stepTerms ?? {}) : undefined,
  };
  if (step > 0 && writeMethodState) {
    mkdirSync(join(tmp, METHOD_STATE));
    writeMethodState(join(tmp, METHOD_STATE));
  }
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

/**
 * The latest checkpoint in `dir` for this fingerprint, or undefined. Inside an iteration,
 * `methodStateDir` is the folder `saveCheckpoint` gave the method: read it before the next save, which
 * removes it.
 */
export function loadCheckpoint(dir: string, fingerprint: string): (DriverCheckpoint & { methodStateDir?: string }) | undefined {
  const pointer = join(dir, POINTER);
  if (!existsSync(pointer)) return undefined;
  const folder = join(dir, readFileSync(pointer, 'utf8').trim());
  if (!existsSync(join(folder, 'state.json'))) return undefined;
  const state = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) as StateFile;
  if (state.fingerprint !== fingerprint) return undefined;
  const images = readNpy(join(folder, 'images.npy'));
  const labels = readNpy(join(folder, 'labels.npy'));
  return {
    iteration: state.iteration,
    fingerprint: state.fingerprint,
    shape: state.shape,
    curve: state.curve,
    images: images.data as Float32Array,
    optimizer: readOptimizerBuffers(folder, state.optimizer ?? LEGACY_SGD),
    learned: readLearnedFiles(folder, state.learned ?? {}),
    labels: labels.data as Int32Array,
    step: state.step ?? 0,
    stepTerms: state.step_terms,
    methodStateDir: (state.step ?? 0) > 0 ? join(folder, METHOD_STATE) : undefined,
  };
}
