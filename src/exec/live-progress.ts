import type { StageProgress, Store } from '../store/store.js';
import { formatDuration } from './estimate.js';

/** Often enough for a person watching `metadd status`, rarely enough to cost nothing. */
const WRITE_INTERVAL_MS = 2000;

/**
 * The pace counts over the last PACE_WINDOW_MS to twice that (over the whole attempt until it is that
 * long): long enough to smooth a stage's uneven steps, short enough to follow the machine's load (a
 * worker paused or sharing its core for a while, another job ending) instead of averaging it in.
 */
const PACE_WINDOW_MS = 5 * 60_000;

/**
 * The worker's side: records the attempt's start at once (where a stopped attempt left off, when it
 * resumes one), then every progress report at most every WRITE_INTERVAL_MS (and always the last,
 * done === total), in the store beside the stage's lock, with the earlier report its pace counts from.
 */
export function liveProgressWriter(store: Store, key: string, now: () => number = Date.now): (done: number, total: number, message?: string) => void {
  const startedAt = new Date(now()).toISOString();
  // A file that cannot be written (a full disk) costs `metadd status` its detail, never the stage.
  const write = (p: StageProgress): void => {
    try {
      store.writeProgress(key, p);
    } catch {
      // Nothing to do: the next report tries again.
    }
  };
  // A resumed attempt starts about where the last one stopped (its file says, give or take a checkpoint
  // interval): until its first report, an interruption keeps that, not 0 of 0, for the next estimate.
  const stopped = store.readStoppedProgress(key);
  write({ startedAt, updatedAt: startedAt, done: stopped?.done ?? 0, total: stopped?.total ?? 0 });
  // The report the pace counts from, and the newest candidate, which takes its place once it is PACE_WINDOW_MS old.
  let from: { done: number; t: number } | undefined;
  let next: { done: number; t: number } | undefined;
  let lastWrite = 0;
  // Called at every step of a stage: the timestamps are formatted only for the reports that are kept.
  return (done, total, message) => {
    const t = now();
    if (!from || !next) from = next = { done, t };
    if (t - lastWrite < WRITE_INTERVAL_MS && done < total) return;
    lastWrite = t;
    if (t - next.t >= PACE_WINDOW_MS) [from, next] = [next, { done, t }];
    write({
      startedAt,
      updatedAt: new Date(t).toISOString(),
      done,
      total,
      ...(message === undefined ? {} : { message }),
      paceDone: from.done,
      paceAt: new Date(from.t).toISOString(),
    });
  };
}

/** Fraction of its units a stage has left, or undefined before its first report. */
export function leftFraction(p: StageProgress): number | undefined {
  if (p.total <= 0) return undefined;
  return Math.min(1, Math.max(0, (p.total - p.done) / p.total));
}

/**
 * Seconds the stage needs to finish at its recent pace (units per second since the report `paceAt`
 * names: the attempt's first, or one 5-10 minutes old), counted from `nowMs`; undefined until it has
 * advanced past that report.
 */
export function secondsLeft(p: StageProgress, nowMs: number): number | undefined {
  if (p.paceDone === undefined || p.paceAt === undefined || p.total <= 0) return undefined;
  const advanced = p.done - p.paceDone;
  const spent = (Date.parse(p.updatedAt) - Date.parse(p.paceAt)) / 1000;
  if (advanced <= 0 || spent <= 0) return undefined;
  const atUpdate = ((p.total - p.done) * spent) / advanced;
  return Math.max(0, atUpdate - (nowMs - Date.parse(p.updatedAt)) / 1000);
}

/** `117/4000 model 1/2 epoch 59 loss 0.0470; 3 min in, about 47 min left at its pace` for a status row. */
export function describeLiveProgress(p: StageProgress, nowMs: number): string {
  const elapsed = `${formatDuration(Math.max(0, (nowMs - Date.parse(p.startedAt)) / 1000))} in`;
  if (p.total <= 0) return `starting; ${elapsed}`;
  const left = secondsLeft(p, nowMs);
  const pace = left === undefined ? '' : `, about ${formatDuration(left)} left at its pace`;
  return `${unitsText(p)}; ${elapsed}${pace}`;
}

/** `2990/4000 model 2/2 epoch 495 loss 0.0023`: the units done and the stage's own message. */
function unitsText(p: StageProgress): string {
  return `${p.done}/${p.total}${p.message ? ` ${p.message}` : ''}`;
}

/** `stopped at 2990/4000 model 2/2 epoch 495 loss 0.0023 (2026-12-05 22:36 UTC)` for a stage that will resume. */
export function describeStoppedProgress(p: StageProgress): string {
  const when = `${p.updatedAt.slice(0, 16).replace('T', ' ')} UTC`;
  if (p.total <= 0) return `stopped before its first report (${when})`;
  return `stopped at ${unitsText(p)} (${when})`;
}
