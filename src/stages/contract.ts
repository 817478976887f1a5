import type { Rng } from '../util/rng.js';
import type { Tracker } from '../tracking/records.js';

export const STAGE_KINDS = ['dataset', 'pretrain', 'distill', 'metadd', 'eval', 'report'] as const;
export type StageKind = (typeof STAGE_KINDS)[number];

/** A finished upstream artifact, read-only. */
export interface ArtifactView {
  key: string;
  kind: StageKind;
  /** Directory holding the artifact's files. Never write here. */
  dir: string;
  /** The stage's own `meta.json` (whatever the producing stage wrote there), or {} if none. */
  meta: Record<string, unknown>;
}

export interface ProgressReporter {
  /** `done` of `total` units (iterations, epochs, models); `message` is a short status such as a loss. */
  update(done: number, total: number, message?: string): void;
}

/**
 * What a stage gets to run. A stage never talks to MLflow or the scheduler: it reads its inputs,
 * writes files under `outDir`, and reports through `track` and `progress`. That is what lets the
 * same stage run in a local worker process or in a Slurm job.
 */
export interface StageContext<P = Record<string, unknown>> {
  key: string;
  kind: StageKind;
  /** Resolved parameters: exactly what went into the cache key. */
  params: P;
  /** Upstream artifacts by the input name the DAG gave them (e.g. `dataset`, `images`, `aux0`). */
  inputs: Record<string, ArtifactView>;
  /** A fresh directory; the store renames it into place atomically when `run` resolves. */
  outDir: string;
  /** Persistent between attempts of the same key (checkpoints for resume); deleted after success. */
  scratchDir: string;
  /** Seeded from the spec (the stage's seed material, not the backend). */
  rng: Rng;
  progress: ProgressReporter;
  track: Tracker;
  /** The tensor backend in use (`wasm`, `tensorflow`, `cpu`), already initialised if `needsTensors`. */
  backend: string;
  signal: AbortSignal;
  log(message: string): void;
}

export interface StageImpl<P = Record<string, unknown>> {
  kind: StageKind;
  /** Bump when the output for the same parameters changes; it is part of the cache key. */
  version: number;
  /** Whether the worker must initialise a tensor backend before `run`. */
  needsTensors: boolean;
  run(ctx: StageContext<P>): Promise<void>;
}
