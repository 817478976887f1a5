import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { readJsonIfReadable } from '../util/read-json.js';

/** The process that holds a stage's lock, as the owner file beside the lock records it. */
export interface Holder {
  pid: number;
  host: string;
  /**
   * When the process started, in clock ticks since boot (Linux's /proc/PID/stat): a later process that
   * was given the same pid has another. Absent where /proc is not there, and in older owner files.
   */
  started?: number;
}

/**
 * - `running`: on this host and alive;
 * - `paused`: on this host, alive and stopped by a signal (SIGSTOP, Ctrl-Z): it goes on when continued;
 * - `gone`: it was on this host and has exited (or its pid now names another process);
 * - `elsewhere`: on another host, where only the lock's heartbeat can tell.
 */
export type HolderState = 'running' | 'paused' | 'gone' | 'elsewhere';

interface ProcStat {
  state: string;
  started: number;
}

/** The state letter and start time of a process from /proc; undefined when it has none (exited, or no /proc). */
function procStat(pid: number | 'self'): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const started = Number(fields[19]);
  return Number.isFinite(started) ? { state: fields[0], started } : undefined;
}

const hasProc = procStat('self') !== undefined;

function signalReaches(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process, as it records itself beside a lock it takes. */
export function thisProcess(): Holder {
  const started = procStat('self')?.started;
  return { pid: process.pid, host: hostname(), ...(started === undefined ? {} : { started }) };
}

/** The holder an owner file names; undefined when there is none or it cannot be read (half-written). */
export function readHolder(path: string): Holder | undefined {
  const h = readJsonIfReadable<Partial<Holder>>(path);
  if (typeof h?.pid !== 'number' || typeof h.host !== 'string') return undefined;
  return { pid: h.pid, host: h.host, ...(typeof h.started === 'number' ? { started: h.started } : {}) };
}

/**
 * Whether a recorded holder is still there. On this host the process table answers: a holder that is
 * paused, or too busy to refresh its lock's heartbeat, is still the holder.
 */
export function holderState(h: Holder): HolderState {
  if (h.host !== hostname()) return 'elsewhere';
  const stat = hasProc ? procStat(h.pid) : undefined;
  // No /proc, or one that hides other users' processes (hidepid): a signal still tells whether the pid lives.
  if (!stat) return signalReaches(h.pid) ? 'running' : 'gone';
  if (h.started !== undefined && stat.started !== h.started) return 'gone';
  // Z: exited, not yet reaped by its parent; T: stopped by a signal; t: stopped by a debugger.
  if (stat.state === 'Z' || stat.state === 'X') return 'gone';
  return stat.state === 'T' || stat.state === 't' ? 'paused' : 'running';
}
