import cliProgress from 'cli-progress';
import type { WorkerEvent } from './events.js';
import type { StageResult } from './scheduler.js';
import type { Dag } from '../dag/compile.js';

type Event = WorkerEvent | { type: 'result'; result: StageResult };

export interface ProgressView {
  onEvent(event: Event): void;
  stop(): void;
}

function fmtEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 90) return `${Math.round(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
}

/** ` in 812.4s (805.1s CPU)`: the wall time, and the CPU time the worker recorded where known; '' without either. */
export function stageTime(r: StageResult): string {
  if (r.seconds === undefined) return '';
  const cpu = r.cpuSeconds !== undefined ? ` (${r.cpuSeconds.toFixed(1)}s CPU)` : '';
  return ` in ${r.seconds.toFixed(1)}s${cpu}`;
}

/** Live bars per running stage on a terminal; one plain line per state change otherwise (logs, CI). */
export function createProgressView(dag: Dag, stream: NodeJS.WriteStream = process.stderr): ProgressView {
  const label = (key: string): string => dag.nodes.get(key)?.label ?? key.slice(0, 12);
  const total = dag.order.length;
  let finished = 0;
  const started = new Map<string, number>();
  const line = (text: string): void => {
    stream.write(`${text}\n`);
  };
  const resultLine = (r: StageResult): string => {
    const t = stageTime(r);
    const extra = r.status === 'skipped' ? ` (upstream ${label(r.because ?? '')} failed)` : r.status === 'failed' ? `: ${(r.error ?? '').split('\n')[0]}` : '';
    return `[${finished}/${total}] ${r.status.padEnd(8)} ${r.label}${t}${extra}`;
  };

  if (!stream.isTTY) {
    let lastProgress = new Map<string, number>();
    return {
      onEvent(e) {
        if (e.type === 'result') {
          finished++;
          line(resultLine(e.result));
        } else if (e.type === 'status' && e.status === 'started') {
          started.set(e.key, Date.now());
          line(`          started  ${label(e.key)}`);
        } else if (e.type === 'status' && e.status === 'waiting') {
          line(`          waiting  ${label(e.key)}: ${e.detail ?? ''}`);
        } else if (e.type === 'progress') {
          // Plain logs get a progress line at most every 30 s per stage.
          const now = Date.now();
          if (now - (lastProgress.get(e.key) ?? 0) < 30_000 && e.done < e.total) return;
          lastProgress.set(e.key, now);
          line(`          progress ${label(e.key)}: ${e.done}/${e.total}${e.message ? ` ${e.message}` : ''}`);
        }
      },
      stop() {
        lastProgress = new Map();
      },
    };
  }

  const multibar = new cliProgress.MultiBar(
    { format: ' {bar} {percentage}% | {stage} | {value}/{total} | ETA {eta_h} {msg}', hideCursor: true, clearOnComplete: false, stream, barsize: 24 },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const overall = multibar.create(total, 0, { stage: 'all stages', msg: '', eta_h: '' });
  return {
    onEvent(e) {
      if (e.type === 'result') {
        finished++;
        overall.update(finished);
        const bar = bars.get(e.result.key);
        if (bar) {
          multibar.remove(bar);
          bars.delete(e.result.key);
        }
        if (e.result.status !== 'cached') multibar.log(`${resultLine(e.result)}\n`);
      } else if (e.type === 'status' && e.status === 'started') {
        started.set(e.key, Date.now());
        bars.set(e.key, multibar.create(1, 0, { stage: label(e.key), msg: '', eta_h: '' }));
      } else if (e.type === 'status' && e.status === 'waiting') {
        // No bar of its own (the other process has it); the worker says this once, then every 30 s.
        multibar.log(`          waiting  ${label(e.key)}: ${e.detail ?? ''}\n`);
      } else if (e.type === 'progress') {
        const bar = bars.get(e.key);
        if (!bar) return;
        const t0 = started.get(e.key) ?? Date.now();
        const rate = e.done > 0 ? (Date.now() - t0) / 1000 / e.done : NaN;
        bar.setTotal(e.total);
        bar.update(e.done, { msg: e.message ?? '', eta_h: fmtEta(rate * (e.total - e.done)) });
      }
    },
    stop() {
      // stop() does not write lines logged since the last redraw (the last results): redraw first.
      multibar.update();
      multibar.stop();
    },
  };
}
