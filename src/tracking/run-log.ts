import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { StageKind } from '../stages/contract.js';
import type { TrackRecord } from './records.js';
import { isNotFound, readJsonIfExists, writeJsonAtomic } from './fs-atomic.js';
import { runDir, runsDir } from './layout.js';
import { appendRecords } from './records-io.js';

/**
 * The run log of one `metadd run` invocation: `<root>/runs/<runId>/run.json`, plus an optional
 * `records.jsonl` for the run's own records (artifact paths relative to the run log dir) and a
 * copy of the spec file under `spec/`. It is the local source of truth; MLflow is synced from it.
 */
export type RunStatus = 'running' | 'finished' | 'failed' | 'interrupted';
export type StageRunStatus = 'computed' | 'cached' | 'failed' | 'skipped';

export interface RunLogStage {
  key: string;
  kind: StageKind;
  label: string;
  status: StageRunStatus;
  error?: string;
}

export interface RunLog {
  runId: string;
  spec: { name: string; path: string };
  resolvedSpec: Record<string, unknown>;
  cells: Record<string, unknown>[];
  /** ISO 8601. */
  startedAt: string;
  finishedAt?: string;
  status: RunStatus;
  stages: RunLogStage[];
  gitCommit?: string;
  metaddVersion: string;
  backend: string;
}

export type NewRunLog = Omit<RunLog, 'status' | 'stages'> & Partial<Pick<RunLog, 'status' | 'stages'>>;

export const RUN_LOG_FILE = 'run.json';
export const RUN_RECORDS_FILE = 'records.jsonl';
/** The copy of the spec file lives here so that a later `metadd sync` does not depend on the cwd. */
export const RUN_SPEC_DIR = 'spec';

export function runLogPath(root: string, runId: string): string {
  return join(runDir(root, runId), RUN_LOG_FILE);
}

export function runRecordsPath(root: string, runId: string): string {
  return join(runDir(root, runId), RUN_RECORDS_FILE);
}

/**
 * Create the run log directory and `run.json` (status `running`, no stages unless given) and copy
 * the spec file next to it when `spec.path` is readable. Fails if the run id is already taken.
 * Returns the run log directory.
 */
export async function createRunLog(root: string, init: NewRunLog): Promise<string> {
  const dir = runDir(root, init.runId);
  const log: RunLog = { ...init, status: init.status ?? 'running', stages: init.stages ?? [] };
  validateRunLog(log, 'new run log');
  await mkdir(runsDir(root), { recursive: true });
  try {
    // Non-recursive mkdir is the atomic "claim this run id" step.
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`run log ${init.runId} already exists in ${dir}`, { cause: err });
    throw err;
  }
  await copySpecFile(dir, init.spec.path);
  await writeJsonAtomic(join(dir, RUN_LOG_FILE), log);
  return dir;
}

async function copySpecFile(dir: string, specPath: string): Promise<void> {
  if (!specPath) return;
  try {
    const s = await stat(specPath);
    if (!s.isFile()) return;
  } catch (err) {
    // A spec given inline (no file) is legitimate; the resolved spec is in run.json anyway.
    if (isNotFound(err)) return;
    throw err;
  }
  await mkdir(join(dir, RUN_SPEC_DIR), { recursive: true });
  await copyFile(specPath, join(dir, RUN_SPEC_DIR, basename(specPath)));
}

export async function readRunLog(root: string, runId: string): Promise<RunLog> {
  const path = runLogPath(root, runId);
  const log = await readJsonIfExists<unknown>(path);
  if (log === undefined) throw new Error(`no run log ${runId} (${path} does not exist)`);
  validateRunLog(log, path);
  return log;
}

// Updates of one run from one process are chained so that two concurrent read-modify-write
// cycles (e.g. two stages finishing together) cannot lose each other's change.
const updateChains = new Map<string, Promise<unknown>>();

/**
 * Apply a patch (shallow merge) or a function to `run.json` and write it atomically.
 * Serialised per run within a process; one process owns a run's log while it runs.
 */
export function updateRunLog(
  root: string,
  runId: string,
  change: Partial<Omit<RunLog, 'runId'>> | ((log: RunLog) => RunLog),
): Promise<RunLog> {
  const path = runLogPath(root, runId);
  const previous = updateChains.get(path) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(async () => {
      const current = await readRunLog(root, runId);
      const updated = typeof change === 'function' ? change(structuredClone(current)) : { ...current, ...change };
      if (updated.runId !== runId) throw new Error(`updateRunLog: the run id cannot change (${runId} -> ${updated.runId})`);
      validateRunLog(updated, path);
      await writeJsonAtomic(path, updated);
      return updated;
    });
  updateChains.set(path, next);
  void next.finally(() => {
    if (updateChains.get(path) === next) updateChains.delete(path);
  }).catch(() => undefined);
  return next;
}

/** Insert or replace (by key) one stage's outcome. */
export function recordStage(root: string, runId: string, stage: RunLogStage): Promise<RunLog> {
  return updateRunLog(root, runId, (log) => {
    const i = log.stages.findIndex((s) => s.key === stage.key);
    if (i >= 0) log.stages[i] = stage;
    else log.stages.push(stage);
    return log;
  });
}

/** Append the run's own records (report artifacts etc., paths relative to the run log dir). */
export function appendRunRecords(root: string, runId: string, records: readonly TrackRecord[]): Promise<void> {
  return appendRecords(runRecordsPath(root, runId), records);
}

/** Every run log under the root, oldest first. Directories without a `run.json` are ignored. */
export async function listRunLogs(root: string): Promise<RunLog[]> {
  let names: string[];
  try {
    names = await readdir(runsDir(root));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const logs: RunLog[] = [];
  for (const name of names) {
    const path = join(runsDir(root), name, RUN_LOG_FILE);
    const log = await readJsonIfExists<unknown>(path);
    if (log === undefined) continue;
    validateRunLog(log, path);
    logs.push(log);
  }
  return logs.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt) || a.runId.localeCompare(b.runId));
}

const RUN_STATUSES: readonly string[] = ['running', 'finished', 'failed', 'interrupted'];
const STAGE_STATUSES: readonly string[] = ['computed', 'cached', 'failed', 'skipped'];

/** Shape check so that a hand-edited or truncated run.json fails here, with its path, not deep in sync. */
export function validateRunLog(value: unknown, where: string): asserts value is RunLog {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (typeof value !== 'object' || value === null) fail('not an object');
  const o = value as Record<string, unknown>;
  if (typeof o.runId !== 'string' || o.runId === '') fail('runId must be a non-empty string');
  const spec = o.spec as Record<string, unknown> | undefined;
  if (typeof spec !== 'object' || spec === null || typeof spec.name !== 'string' || typeof spec.path !== 'string') {
    fail('spec must be { name: string, path: string }');
  }
  if (typeof o.resolvedSpec !== 'object' || o.resolvedSpec === null || Array.isArray(o.resolvedSpec)) fail('resolvedSpec must be an object');
  if (!Array.isArray(o.cells)) fail('cells must be an array');
  if (typeof o.startedAt !== 'string' || Number.isNaN(Date.parse(o.startedAt))) fail('startedAt must be an ISO date');
  if (o.finishedAt !== undefined && (typeof o.finishedAt !== 'string' || Number.isNaN(Date.parse(o.finishedAt)))) {
    fail('finishedAt must be an ISO date');
  }
  if (typeof o.status !== 'string' || !RUN_STATUSES.includes(o.status)) fail(`status must be one of ${RUN_STATUSES.join(', ')}`);
  if (!Array.isArray(o.stages)) fail('stages must be an array');
  for (const [i, s] of (o.stages as unknown[]).entries()) {
    const st = s as Record<string, unknown>;
    if (typeof st !== 'object' || st === null || typeof st.key !== 'string' || typeof st.kind !== 'string' || typeof st.label !== 'string') {
      fail(`stages[${i}] must have string key, kind and label`);
    }
    if (typeof st.status !== 'string' || !STAGE_STATUSES.includes(st.status)) fail(`stages[${i}].status must be one of ${STAGE_STATUSES.join(', ')}`);
    if (st.error !== undefined && typeof st.error !== 'string') fail(`stages[${i}].error must be a string`);
  }
  if (o.gitCommit !== undefined && typeof o.gitCommit !== 'string') fail('gitCommit must be a string');
  if (typeof o.metaddVersion !== 'string') fail('metaddVersion must be a string');
  if (typeof o.backend !== 'string') fail('backend must be a string');
}
