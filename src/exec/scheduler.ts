import type { Dag, StageNode } from '../dag/compile.js';
import type { Store } from '../store/store.js';
import type { WorkerEvent } from './events.js';
import type { WorkerOutcome } from './worker.js';

/** Runs single stages somewhere (local worker processes, Slurm jobs). The scheduler decides what and when. */
export interface Executor {
  readonly name: string;
  run(node: StageNode, onEvent: (event: WorkerEvent) => void, signal: AbortSignal): Promise<WorkerOutcome>;
}

/** `interrupted`: stopped by the run's own cancellation (Ctrl-C); its saved progress waits for the next run. */
export type StageStatus = 'pending' | 'running' | 'computed' | 'cached' | 'failed' | 'skipped' | 'interrupted';

export interface StageResult {
  key: string;
  kind: StageNode['kind'];
  label: string;
  status: StageStatus;
  error?: string;
  /** For skipped stages: the failed upstream stage. */
  because?: string;
  /** Wall seconds from dispatch to the end, as the scheduler saw them. */
  seconds?: number;
  /** For computed stages: the CPU seconds the worker recorded in the manifest (see ManifestCompute). */
  cpuSeconds?: number;
}

/** The CPU time a computed stage's worker recorded in its manifest, as a StageResult field. */
export function recordedCpu(store: Store, key: string): Pick<StageResult, 'cpuSeconds'> {
  // A log line without it is better than a failed run: the artifact itself is already committed.
  try {
    const cpu = store.manifest(key).compute?.cpuSeconds;
    return cpu === undefined ? {} : { cpuSeconds: cpu };
  } catch {
    return {};
  }
}

/** Ready stages probed for another process's lock per dispatch (bounds the cost on huge sweeps). */
const LOCK_PROBE_LIMIT = 64;

export interface ScheduleOptions {
  jobs: number;
  force?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: WorkerEvent | { type: 'result'; result: StageResult }) => void;
}

export interface ScheduleSummary {
  results: StageResult[];
  interrupted: boolean;
}

/**
 * Dispatches ready stages (all inputs done) to the executor, at most `jobs` at a time. A failed stage
 * fails only its dependents (marked skipped); everything else runs on. Cached stages are recognised
 * here without starting a worker.
 */
export async function schedule(dag: Dag, store: Store, executor: Executor, options: ScheduleOptions): Promise<ScheduleSummary> {
  const status = new Map<string, StageStatus>();
  const results = new Map<string, StageResult>();
  const dependents = new Map<string, string[]>();
  const waiting = new Map<string, number>();
  for (const key of dag.order) {
    const node = dag.nodes.get(key) as StageNode;
    status.set(key, 'pending');
    const ups = Object.values(node.inputs).filter((k) => dag.nodes.has(k));
    waiting.set(key, ups.length);
    for (const up of ups) dependents.set(up, [...(dependents.get(up) ?? []), key]);
  }
  // Stages that unlock more work go first (distillation before the evaluations of a finished set),
  // which keeps the critical path busy; ties keep the DAG's order.
  const weight = new Map<string, number>();
  for (const key of [...dag.order].reverse()) {
    const seen = new Set<string>();
    const stack = [...(dependents.get(key) ?? [])];
    while (stack.length > 0) {
      const d = stack.pop() as string;
      if (seen.has(d)) continue;
      seen.add(d);
      stack.push(...(dependents.get(d) ?? []));
    }
    weight.set(key, seen.size);
  }
  // Among stages that unlock as much, the lowest seed first: a long sweep completes one seed of every
  // row (a paired comparison the report can already show) before it starts the next.
  const seedOfCell = new Map(dag.cells.map((c) => [c.cell.index, c.cell.spec.seed]));
  const seed = new Map(dag.order.map((k) => [k, lowestSeed((dag.nodes.get(k) as StageNode).cells, seedOfCell)]));
  const position = new Map(dag.order.map((k, i) => [k, i]));
  const byPriority = (a: string, b: string): number =>
    (weight.get(b) ?? 0) - (weight.get(a) ?? 0) || (seed.get(a) ?? 0) - (seed.get(b) ?? 0) || (position.get(a) ?? 0) - (position.get(b) ?? 0);
  const ready: string[] = dag.order.filter((k) => waiting.get(k) === 0).sort(byPriority);
  // Kept sorted by binary insertion: large sweeps have thousands of ready stages at once.
  const enqueue = (key: string): void => {
    let lo = 0;
    let hi = ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byPriority(ready[mid], key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, key);
  };
  /**
   * The next ready stage: the first by priority that no other process is computing (another `metadd
   * run` on the same store holds its lock), so that concurrent runs share the work instead of queueing
   * behind each other; when every candidate is busy elsewhere, the first (its worker waits and then
   * reads the other process's result).
   */
  const takeNext = async (): Promise<string> => {
    const candidates = ready.slice(0, LOCK_PROBE_LIMIT);
    for (const key of candidates) {
      if (!options.force && store.has(key)) return take(key);
      if (!(await store.isLocked(key))) return take(key);
    }
    return take(ready[0]);
  };
  // `ready` may have changed while a lock was probed (stages finished): remove by value.
  const take = (key: string): string => {
    ready.splice(ready.indexOf(key), 1);
    return key;
  };
  const running = new Map<string, Promise<void>>();
  const inner = new AbortController();
  const onAbort = (): void => inner.abort();
  options.signal?.addEventListener('abort', onAbort);

  const finish = (key: string, result: StageResult): void => {
    status.set(key, result.status);
    results.set(key, result);
    options.onEvent?.({ type: 'result', result });
    if (result.status === 'failed' || result.status === 'skipped') {
      const stack = [...(dependents.get(key) ?? [])];
      while (stack.length > 0) {
        const d = stack.pop() as string;
        if (status.get(d) !== 'pending') continue;
        const dn = dag.nodes.get(d) as StageNode;
        const skipped: StageResult = { key: d, kind: dn.kind, label: dn.label, status: 'skipped', because: result.because ?? key };
        status.set(d, 'skipped');
        results.set(d, skipped);
        options.onEvent?.({ type: 'result', result: skipped });
        stack.push(...(dependents.get(d) ?? []));
      }
      return;
    }
    for (const d of dependents.get(key) ?? []) {
      const left = (waiting.get(d) ?? 0) - 1;
      waiting.set(d, left);
      if (left === 0 && status.get(d) === 'pending') enqueue(d);
    }
  };

  const start = (key: string): void => {
    const node = dag.nodes.get(key) as StageNode;
    if (!options.force && store.has(key)) {
      finish(key, { key, kind: node.kind, label: node.label, status: 'cached' });
      return;
    }
    status.set(key, 'running');
    const t0 = Date.now();
    const p = executor
      .run(node, (e) => options.onEvent?.(e), inner.signal)
      .then(
        (outcome) =>
          finish(key, {
            key,
            kind: node.kind,
            label: node.label,
            status: outcome,
            seconds: (Date.now() - t0) / 1000,
            ...(outcome === 'computed' ? recordedCpu(store, key) : {}),
          }),
        (err: unknown) =>
          finish(key, {
            key,
            kind: node.kind,
            label: node.label,
            // A worker the run itself stopped did not fail: its dependents are not started, not skipped.
            status: inner.signal.aborted ? 'interrupted' : 'failed',
            error: err instanceof Error ? err.message : String(err),
            seconds: (Date.now() - t0) / 1000,
          }),
      )
      .finally(() => running.delete(key));
    running.set(key, p);
  };

  while (!inner.signal.aborted) {
    while (ready.length > 0 && running.size < options.jobs && !inner.signal.aborted) start(await takeNext());
    if (running.size === 0) {
      if (ready.length === 0) break;
      continue;
    }
    await Promise.race(running.values());
  }
  await Promise.allSettled(running.values());
  options.signal?.removeEventListener('abort', onAbort);
  const interrupted = inner.signal.aborted;
  const all = dag.order.map((key) => {
    const node = dag.nodes.get(key) as StageNode;
    return results.get(key) ?? { key, kind: node.kind, label: node.label, status: status.get(key) ?? 'pending' };
  });
  return { results: all, interrupted };
}

/** The lowest seed among the cells that need a stage (0 where the cells are not known). */
function lowestSeed(cells: number[], seedOfCell: Map<number, number>): number {
  let lowest = Infinity;
  for (const c of cells) lowest = Math.min(lowest, seedOfCell.get(c) ?? 0);
  return Number.isFinite(lowest) ? lowest : 0;
}
