import type { StageKind } from '../../stages/contract.js';
import type { Slurm, SlurmResources } from '../../spec/resolved.generated.js';

/** The `executor.slurm` block of a spec; every field optional so code and tests can build one by hand. */
export type SlurmConfig = Partial<Slurm>;

/** Resources of a stage kind: `defaults`, overridden field by field by `stages.<kind>`; extra flags add up. */
export function resourcesFor(kind: StageKind, config: SlurmConfig): SlurmResources {
  const base = config.defaults ?? {};
  const own = config.stages?.[kind] ?? {};
  const extra = [...(base.extra ?? []), ...(own.extra ?? [])];
  return { ...base, ...own, ...(extra.length > 0 ? { extra } : {}) };
}

export function resourceFlags(r: SlurmResources): string[] {
  const flags: string[] = [];
  if (r.partition) flags.push(`--partition=${r.partition}`);
  if (r.account) flags.push(`--account=${r.account}`);
  if (r.qos) flags.push(`--qos=${r.qos}`);
  if (r.cpus !== undefined) flags.push(`--cpus-per-task=${r.cpus}`);
  if (r.mem) flags.push(`--mem=${r.mem}`);
  if (r.time) flags.push(`--time=${r.time}`);
  if (r.gres) flags.push(`--gres=${r.gres}`);
  if (r.constraint) flags.push(`--constraint=${r.constraint}`);
  // Last, so a site-specific flag can override one of the above.
  flags.push(...(r.extra ?? []));
  return flags;
}

/**
 * `<prefix>-<first 10 key chars>-<label>`, reduced to characters every Slurm tool prints unquoted:
 * the short key finds the stage in the store, the label tells a human in squeue what it is.
 */
export function jobName(prefix: string, key: string, label: string): string {
  const clean = label
    .replace(/<-/g, 'from')
    .replace(/[^A-Za-z0-9._=-]+/g, '_')
    .replace(/^_+|_+$/g, '');
  const head = `${prefix}-${key.slice(0, 10)}-`;
  // Only the label is shortened: the key part is how a later run recognises the job as this stage's.
  return head + clean.slice(0, Math.max(0, 120 - head.length));
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface JobScript {
  key: string;
  label: string;
  storeRoot: string;
  node: string;
  cli: string;
  cwd: string;
  setup: string[];
  force: boolean;
  /** The sbatch flags, recorded in a comment so that a human can resubmit the script by hand. */
  flags: string[];
}

/**
 * The batch script of one stage: the same `exec-stage` command the local executor runs, with lines
 * marking the job's start and end (milliseconds) in the stage's log for humans and for the tests.
 */
export function jobScript(j: JobScript): string {
  const command = [j.node, j.cli, 'exec-stage', '--store', j.storeRoot, j.key, ...(j.force ? ['--force'] : [])];
  return [
    '#!/bin/bash',
    `# metadd stage: ${j.label.replace(/\n/g, ' ')}`,
    `# key: ${j.key}`,
    `# submitted with: sbatch ${j.flags.map(shellQuote).join(' ')} <this file>`,
    'echo "[metadd-slurm] job ${SLURM_JOB_ID:-?} on $(hostname) start $(date +%s%3N)"',
    `cd ${shellQuote(j.cwd)} || exit 1`,
    ...j.setup,
    command.map(shellQuote).join(' '),
    'rc=$?',
    'echo "[metadd-slurm] job ${SLURM_JOB_ID:-?} exit ${rc} end $(date +%s%3N)"',
    'exit $rc',
    '',
  ].join('\n');
}

/** Reads the `[metadd-slurm]` start/end marks of a job from its stage's log (epoch milliseconds). */
export function jobMarks(log: string, jobId: string): { start?: number; end?: number; exit?: number } {
  const marks: { start?: number; end?: number; exit?: number } = {};
  for (const m of log.matchAll(/^\[metadd-slurm\] job (\S+) (?:on \S+ start (\d+)|exit (\d+) end (\d+))$/gm)) {
    if (m[1] !== jobId) continue;
    if (m[2]) marks.start = Number(m[2]);
    if (m[4]) {
      marks.exit = Number(m[3]);
      marks.end = Number(m[4]);
    }
  }
  return marks;
}
