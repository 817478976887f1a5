import type { StageResult } from '../scheduler.js';
import { stageTime } from '../progress.js';

export interface SlurmCounts {
  pending: number;
  running: number;
  done: number;
  failed: number;
  skipped: number;
}

export interface SlurmView {
  /** A line that stays (submission summary, a stage's result). */
  note(text: string): void;
  result(result: StageResult, total: number, finished: number, jobId?: string): void;
  progress(label: string, done: number, total: number, message?: string): void;
  /** The live summary; `running` names what runs now. */
  counts(counts: SlurmCounts, running: string[]): void;
  stop(): void;
}

export function countsLine(c: SlurmCounts): string {
  const parts = [`${c.pending} pending`, `${c.running} running`, `${c.done} done`, `${c.failed} failed`];
  if (c.skipped > 0) parts.push(`${c.skipped} skipped`);
  return `slurm: ${parts.join(', ')}`;
}

function resultLine(r: StageResult, total: number, finished: number, jobId?: string): string {
  const t = stageTime(r);
  const job = jobId ? ` (job ${jobId})` : '';
  const why = r.status === 'skipped' ? ` (${r.because ? 'an upstream stage failed' : 'dependency never satisfied'})` : r.status === 'failed' ? `: ${(r.error ?? '').split('\n')[0]}` : '';
  return `[${finished}/${total}] ${r.status.padEnd(8)} ${r.label}${t}${job}${why}`;
}

/**
 * On a terminal: one summary line kept at the bottom and rewritten in place, with result lines
 * scrolling above it. Elsewhere (CI, a log file): plain lines, the summary only when it changes.
 */
export function createSlurmView(stream: NodeJS.WriteStream = process.stderr): SlurmView {
  const tty = stream.isTTY === true;
  let status = '';
  let lastPrinted = '';
  const lastProgress = new Map<string, number>();
  const progressText = new Map<string, string>();
  const clear = (): void => {
    if (tty && status) stream.write('\r\x1b[2K');
  };
  const draw = (): void => {
    if (!tty || !status) return;
    const width = stream.columns > 10 ? stream.columns - 1 : 120;
    stream.write(status.length > width ? `${status.slice(0, width - 1)}…` : status);
  };
  const line = (text: string): void => {
    clear();
    stream.write(`${text}\n`);
    draw();
  };
  return {
    note: line,
    result(r, total, finished, jobId) {
      progressText.delete(r.label);
      if (r.status !== 'cached') line(resultLine(r, total, finished, jobId));
    },
    progress(label, done, total, message) {
      const text = `${label} ${done}/${total}${message ? ` ${message}` : ''}`;
      progressText.set(label, text);
      if (tty) return;
      // Plain logs get a progress line at most every 30 s per stage, as under the local executor.
      const now = Date.now();
      if (now - (lastProgress.get(label) ?? 0) < 30_000 && done < total) return;
      lastProgress.set(label, now);
      line(`          progress ${text}`);
    },
    counts(c, running) {
      const summary = countsLine(c);
      if (!tty) {
        if (summary !== lastPrinted) stream.write(`${summary}\n`);
        lastPrinted = summary;
        return;
      }
      const shown = running.slice(0, 2).map((l) => progressText.get(l) ?? l);
      const more = running.length > 2 ? ` +${running.length - 2}` : '';
      const next = `${summary}${shown.length > 0 ? ` | ${shown.join('; ')}${more}` : ''}`;
      if (next === status) return;
      clear();
      status = next;
      draw();
    },
    stop() {
      if (tty && status) stream.write('\n');
      status = '';
    },
  };
}
