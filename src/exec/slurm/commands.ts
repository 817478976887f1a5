import { execa } from 'execa';

/** A Slurm command that could not be run or that refused the request. */
export class SlurmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SlurmError';
  }
}

export const SETUP_HINT = 'run `sudo bash scripts/setup-slurm.sh` for a local single-node cluster, or run metadd on a Slurm login node';

/** Job states after which a job will never run again (squeue %T, sacct State, scontrol JobState). */
const TERMINAL = new Set([
  'BOOT_FAIL',
  'CANCELLED',
  'COMPLETED',
  'DEADLINE',
  'FAILED',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'REVOKED',
  'SPECIAL_EXIT',
  'TIMEOUT',
]);

/**
 * Everything not known to be terminal counts as alive: PENDING, RUNNING, CONFIGURING, COMPLETING,
 * SUSPENDED, REQUEUED, RESIZING, ... New states in later Slurm versions then keep a job waited for
 * rather than declared failed while it may still run.
 */
export function isTerminal(state: string): boolean {
  return TERMINAL.has(state);
}

export interface JobInfo {
  id: string;
  /** Upper-case state without decorations (`CANCELLED`, not `CANCELLED by 0`). */
  state: string;
  /** Why a job is pending (`Dependency`, `Resources`, `JobHeldUser`, `DependencyNeverSatisfied`), or `None`. */
  reason: string;
  /** Wall-clock start and end, when Slurm knows them. */
  start?: Date;
  end?: Date;
  /** `exit:signal` of the batch script (scontrol and sacct only). */
  exitCode?: string;
  /** Job name (squeue only). */
  name?: string;
}

interface Output {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Slurm answers within seconds; a controller that does not answer for a minute is treated as an error. */
const COMMAND_TIMEOUT_MS = 60_000;

async function slurm(cmd: string, args: string[]): Promise<Output> {
  const r = await execa(cmd, args, { reject: false, timeout: COMMAND_TIMEOUT_MS, stdin: 'ignore' });
  if (r.exitCode === undefined) {
    // Never started (not installed) or killed by the timeout: no answer from Slurm at all.
    const notFound = (r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw new SlurmError(notFound ? `${cmd} not found on PATH: ${SETUP_HINT}` : `${cmd} ${args.join(' ')}: ${r.shortMessage}`);
  }
  return { stdout: String(r.stdout), stderr: String(r.stderr).trim(), exitCode: r.exitCode };
}

/** `2026-11-29T05:07:14` (local time, as Slurm prints it) or undefined for `N/A`, `Unknown`, `None`. */
function parseTime(text: string | undefined): Date | undefined {
  if (!text || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function baseState(text: string): string {
  return text.trim().split(/[\s+]/)[0].toUpperCase();
}

/** Submits a batch script; returns the job id. */
export async function sbatch(args: string[], script: string): Promise<string> {
  const r = await slurm('sbatch', ['--parsable', ...args, script]);
  // --parsable prints `<id>` or `<id>;<cluster>`.
  const id = /^(\d+)(;\S+)?$/m.exec(r.stdout.trim())?.[1];
  if (r.exitCode !== 0 || !id) throw new SlurmError(`sbatch failed (exit ${r.exitCode}): ${r.stderr || r.stdout.trim()}`);
  return id;
}

// The name goes last: it is the one field a user could fill with the separator.
const SQUEUE_FORMAT = '%i|%T|%r|%S|%e|%j';
/** Job ids per squeue call: keeps the command line short on large sweeps. */
const SQUEUE_CHUNK = 200;

/**
 * States of the given jobs, finished ones included for as long as the controller remembers them
 * (MinJobAge). Jobs it has forgotten are simply missing from the map.
 */
export async function squeue(ids: string[]): Promise<Map<string, JobInfo>> {
  const out = new Map<string, JobInfo>();
  for (let i = 0; i < ids.length; i += SQUEUE_CHUNK) {
    const chunk = ids.slice(i, i + SQUEUE_CHUNK);
    const r = await slurm('squeue', ['--noheader', '--states=all', `--jobs=${chunk.join(',')}`, `--format=${SQUEUE_FORMAT}`]);
    if (r.exitCode !== 0) {
      // squeue fails the whole call when none of the ids is known any more; that only means "all gone".
      if (/Invalid job id/i.test(r.stderr)) continue;
      throw new SlurmError(`squeue failed (exit ${r.exitCode}): ${r.stderr}`);
    }
    for (const line of r.stdout.split('\n')) {
      const [id, state, reason, start, end, ...name] = line.trim().split('|');
      if (!id || !state) continue;
      out.set(id, { id, state: baseState(state), reason: reason ?? '', start: parseTime(start), end: parseTime(end), name: name.join('|') });
    }
  }
  return out;
}

/** The controller's full record of one job (exit code included), or undefined once it is forgotten. */
export async function scontrolShowJob(id: string): Promise<JobInfo | undefined> {
  const r = await slurm('scontrol', ['--oneliner', 'show', 'job', id]);
  if (r.exitCode !== 0) return undefined;
  const fields = new Map<string, string>();
  for (const m of r.stdout.matchAll(/(\w+)=(\S*)/g)) if (!fields.has(m[1])) fields.set(m[1], m[2]);
  const state = fields.get('JobState');
  if (!state) return undefined;
  return {
    id,
    state: baseState(state),
    reason: fields.get('Reason') ?? '',
    start: parseTime(fields.get('StartTime')),
    end: parseTime(fields.get('EndTime')),
    exitCode: fields.get('ExitCode'),
  };
}

/** The accounting record of a job, for jobs the controller forgot; undefined without accounting. */
export async function sacct(id: string): Promise<JobInfo | undefined> {
  let r: Output;
  try {
    r = await slurm('sacct', ['--noheader', '--parsable2', '--allocations', `--jobs=${id}`, '--format=JobID,State,ExitCode,Start,End']);
  } catch {
    // Sites without sacct on the submit host: the store decides instead.
    return undefined;
  }
  if (r.exitCode !== 0) return undefined;
  for (const line of r.stdout.split('\n')) {
    const [jobId, state, exitCode, start, end] = line.trim().split('|');
    if (jobId !== id || !state) continue;
    return { id, state: baseState(state), reason: '', exitCode, start: parseTime(start), end: parseTime(end) };
  }
  return undefined;
}

/** Cancels jobs; jobs that already ended are not an error. Returns Slurm's complaints, if any. */
export async function scancel(ids: string[]): Promise<string> {
  if (ids.length === 0) return '';
  const r = await slurm('scancel', ids);
  return r.exitCode === 0 ? '' : r.stderr;
}

/** The partition/node states `sinfo` reports, e.g. `idle`, `mixed`, `down*`; throws when Slurm is unreachable. */
export async function sinfoStates(): Promise<string[]> {
  const r = await slurm('sinfo', ['--noheader', '--format=%T']);
  if (r.exitCode !== 0) throw new SlurmError(`sinfo failed (exit ${r.exitCode}): ${r.stderr}`);
  return r.stdout.split('\n').map((s) => s.trim()).filter((s) => s.length > 0);
}
