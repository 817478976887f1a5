import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readNpy, writeNpy } from '../store/npy.js';
import { checkpointIntervalMs } from '../util/checkpoint-interval.js';
import type { TrainCurves, TrainState } from './train.js';
import type { ArchSpec, BnState, InputShape, Model, ParamSpec, Params } from './types.js';
import { buildModel } from './zoo.js';

/**
 * The pretrain artifact layout (docs/artifacts.md, docs/models.md):
 *   model.json            { arch, input, params: [{ name, shape }], buffers: [{ name, shape }] }
 *   params/<name>.npy     trainable parameters, float32, tfjs layouts (conv HWIO, linear [in, out])
 *   buffers/<name>.npy    batch-norm running statistics (only for batch-norm architectures)
 * File names are parameter names with '/' replaced by '.'.
 */
export interface ModelJson {
  arch: ArchSpec;
  input: InputShape;
  params: ParamSpec[];
  buffers: ParamSpec[];
}

export function paramFileName(name: string): string {
  return `${name.replaceAll('/', '.')}.npy`;
}

/** Write tensors as `<dir>/<name>.npy` (shapes checked against `specs`). */
export function writeTensors(dir: string, specs: readonly ParamSpec[], tensors: Params): void {
  mkdirSync(dir, { recursive: true });
  for (const s of specs) {
    const t = tensors[s.name];
    if (!t) throw new Error(`checkpoint: missing tensor ${s.name}`);
    if (t.shape.join() !== s.shape.join()) throw new Error(`checkpoint: ${s.name} is [${t.shape.join(', ')}], expected [${s.shape.join(', ')}]`);
    writeNpy(join(dir, paramFileName(s.name)), t.dataSync() as Float32Array, s.shape);
  }
}

/** Read `<dir>/<name>.npy` for every spec, checking dtype and shape. */
export function readTensors(dir: string, specs: readonly ParamSpec[]): Params {
  const out: Params = {};
  try {
    for (const s of specs) {
      const file = join(dir, paramFileName(s.name));
      const arr = readNpy(file);
      if (arr.dtype !== 'float32' || arr.shape.join() !== s.shape.join()) {
        throw new Error(`${file}: ${arr.dtype} [${arr.shape.join(', ')}], expected float32 [${s.shape.join(', ')}]`);
      }
      out[s.name] = tf.tensor(arr.data as Float32Array, s.shape, 'float32');
    }
  } catch (err) {
    tf.dispose(Object.values(out));
    throw err;
  }
  return out;
}

/** Write a trained network into `dir` in the pretrain layout. */
export function saveModel(dir: string, model: Model, params: Params, bnState: BnState): void {
  mkdirSync(dir, { recursive: true });
  const json: ModelJson = { arch: model.arch, input: model.input, params: [...model.paramSpecs], buffers: [...model.bnSpecs] };
  writeTensors(join(dir, 'params'), model.paramSpecs, params);
  if (model.bnSpecs.length > 0) writeTensors(join(dir, 'buffers'), model.bnSpecs, bnState);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json, null, 2) + '\n');
}

export interface LoadedModel {
  model: Model;
  params: Params;
  bnState: BnState;
}

/** Parameter names and shapes in order (`name[d0,d1] ...`): equal signatures mean interchangeable parameters. */
export function paramSignature(specs: readonly { name: string; shape: readonly number[] }[]): string {
  return specs.map((s) => `${s.name}[${s.shape.join(',')}]`).join(' ');
}

/**
 * Why a loaded network cannot take a dataset's images ("takes 1x28x28 images and 10 classes, the
 * dataset has 3x32x32 and 10"), or null when it can. Callers prefix who the network is.
 */
export function inputMismatch(model: Model, shape: { channels: number; height: number; width: number; classes: number }): string | null {
  const i = model.input;
  if (i.channels === shape.channels && i.height === shape.height && i.width === shape.width && i.classes === shape.classes) return null;
  return `takes ${i.channels}x${i.height}x${i.width} images and ${i.classes} classes, the dataset has ${shape.channels}x${shape.height}x${shape.width} and ${shape.classes}`;
}

/**
 * Rebuild the network of a pretrain artifact (or one of its `snapshots/epoch_<e>` folders: pass
 * `paramsDir` to read the parameters from there while `dir` holds model.json).
 */
export function loadModel(dir: string, paramsDir: string = dir): LoadedModel {
  const file = join(dir, 'model.json');
  let json: ModelJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as ModelJson;
  } catch (err) {
    throw new Error(`${file}: cannot read the model description (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  if (!json.input) throw new Error(`${file}: no 'input' shape; cannot rebuild the network`);
  const model = buildModel(json.arch, json.input);
  if (paramSignature(model.paramSpecs) !== paramSignature(json.params ?? [])) throw new Error(`${file}: parameter list does not match architecture ${JSON.stringify(json.arch)}`);
  const params = readTensors(join(paramsDir, 'params'), model.paramSpecs);
  const bnState = model.bnSpecs.length > 0 ? readTensors(join(paramsDir, 'buffers'), model.bnSpecs) : {};
  return { model, params, bnState };
}

/** `snapshots/epoch_<e>` under a pretrain artifact: parameters after e epochs (e = 0: the initialisation). */
export function snapshotDir(dir: string, epoch: number): string {
  return join(dir, 'snapshots', `epoch_${epoch}`);
}

export function saveSnapshot(dir: string, epoch: number, model: Model, params: Params, bnState: BnState): void {
  const d = snapshotDir(dir, epoch);
  writeTensors(join(d, 'params'), model.paramSpecs, params);
  if (model.bnSpecs.length > 0) writeTensors(join(d, 'buffers'), model.bnSpecs, bnState);
}

/** Epochs with a snapshot, ascending. */
export function listSnapshots(dir: string): number[] {
  const root = join(dir, 'snapshots');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((n) => /^epoch_(\d+)$/.exec(n)?.[1])
    .filter((e): e is string => e !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

interface StateJson {
  epoch: number;
  step?: number;
  epoch_sums?: { loss: number; correct: number };
  curves: TrainCurves;
  buffers: string[];
  extra: unknown;
}

/**
 * Training checkpoints in a scratch directory: each save writes a complete `ckpt-<epoch>-<step>` folder, then
 * atomically replaces `latest.json` pointing at it, then removes older folders. A process killed at any
 * moment leaves `latest.json` naming a complete checkpoint (or no checkpoint at all).
 * `extra` is any JSON the caller wants back on resume (e.g. which snapshots were written).
 */
export function saveTrainState(dir: string, model: Model, state: TrainState, extra: unknown = null): void {
  mkdirSync(dir, { recursive: true });
  const name = `ckpt-${state.epoch}-${state.step}`;
  const target = join(dir, name);
  rmSync(target, { recursive: true, force: true });
  writeTensors(join(target, 'params'), model.paramSpecs, state.params);
  const bufSpecs = model.paramSpecs.filter((s) => state.buffers[s.name]);
  writeTensors(join(target, 'momentum'), bufSpecs, state.buffers);
  if (model.bnSpecs.length > 0) writeTensors(join(target, 'buffers'), model.bnSpecs, state.bnState);
  const json: StateJson = {
    epoch: state.epoch,
    step: state.step,
    epoch_sums: state.epochSums,
    curves: state.curves,
    buffers: bufSpecs.map((s) => s.name),
    extra,
  };
  writeFileSync(join(target, 'state.json'), JSON.stringify(json));
  const tmp = join(dir, 'latest.json.tmp');
  writeFileSync(tmp, JSON.stringify({ checkpoint: name }));
  renameSync(tmp, join(dir, 'latest.json'));
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith('ckpt-') && entry !== name) rmSync(join(dir, entry), { recursive: true, force: true });
  }
}

/**
 * A training stage's checkpoints in `dir`: `save` writes one now, `saveIfDue` only when the last one is at
 * least the interval old (`checkpointIntervalMs(defaultSeconds)`), counted from creation or the last save.
 */
export function intervalCheckpoints(dir: string, model: Model, defaultSeconds: number): { save(s: TrainState): void; saveIfDue(s: TrainState): void } {
  const interval = checkpointIntervalMs(defaultSeconds);
  let lastSave = Date.now();
  const save = (s: TrainState): void => {
    saveTrainState(dir, model, s);
    lastSave = Date.now();
  };
  return { save, saveIfDue: (s) => (Date.now() - lastSave < interval ? undefined : save(s)) };
}

/** Where a resumed state stands inside an epoch, for logs: `, step 2 of epoch 3`, or '' at a boundary. */
export function stepWithinEpoch(state: TrainState): string {
  return state.step > 0 ? `, step ${state.step} of epoch ${state.epoch + 1}` : '';
}

/** The latest complete checkpoint in `dir`, or null when there is none. */
export function loadTrainState(dir: string, model: Model): { state: TrainState; extra: unknown } | null {
  const pointer = join(dir, 'latest.json');
  if (!existsSync(pointer)) return null;
  const { checkpoint } = JSON.parse(readFileSync(pointer, 'utf8')) as { checkpoint: string };
  const target = join(dir, checkpoint);
  const json = JSON.parse(readFileSync(join(target, 'state.json'), 'utf8')) as StateJson;
  const params = readTensors(join(target, 'params'), model.paramSpecs);
  const buffers = readTensors(join(target, 'momentum'), model.paramSpecs.filter((s) => json.buffers.includes(s.name)));
  const bnState = model.bnSpecs.length > 0 ? readTensors(join(target, 'buffers'), model.bnSpecs) : {};
  // Checkpoints written before mid-epoch resume existed hold epoch boundaries only.
  const step = json.step ?? 0;
  const epochSums = json.epoch_sums ?? { loss: 0, correct: 0 };
  const state: TrainState = { epoch: json.epoch, step, epochSums, params, buffers, bnState, curves: json.curves };
  return { state, extra: json.extra };
}
