import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../../store/store.js';

/** One sbatch submission of a stage. */
export interface SlurmSubmission {
  jobId: string;
  submittedAt: string;
  /** Size of the stage's log when the job was submitted: its own output starts there. */
  logOffset: number;
  /** Whether the job recomputes a cached stage (`--force`); a forced run does not adopt an unforced job. */
  force: boolean;
  /** Job ids given to `--dependency=afterok:`. */
  dependsOn: string[];
  /** The submitting host and process, for a human tracing a duplicate. */
  host: string;
  pid: number;
}

/**
 * The submission history of one stage key, kept in the store (`slurm/<key>.json`) so that a later
 * run, from any host sharing the store, finds the job that may still be queued instead of submitting
 * the stage again.
 */
export interface SlurmRecord {
  key: string;
  label: string;
  submissions: SlurmSubmission[];
}

export function slurmDir(store: Store): string {
  return join(store.root, 'slurm');
}

export function recordPath(store: Store, key: string): string {
  return join(slurmDir(store), `${key}.json`);
}

/** The batch script of a key (rewritten at every submission; Slurm keeps its own copy per job). */
export function scriptPath(store: Store, key: string): string {
  return join(slurmDir(store), `${key}.sh`);
}

export function readSlurmRecord(store: Store, key: string): SlurmRecord | undefined {
  const path = recordPath(store, key);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SlurmRecord;
  } catch {
    // Written atomically, so only a hand-edited file is unreadable: treat the key as never submitted.
    return undefined;
  }
}

export function latestSubmission(store: Store, key: string): SlurmSubmission | undefined {
  return readSlurmRecord(store, key)?.submissions.at(-1);
}

export function appendSubmission(store: Store, key: string, label: string, submission: SlurmSubmission): void {
  const record = readSlurmRecord(store, key) ?? { key, label, submissions: [] };
  record.label = label;
  record.submissions.push(submission);
  store.writeAtomic(recordPath(store, key), `${JSON.stringify(record, null, 2)}\n`);
}
