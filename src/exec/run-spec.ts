import { cpus } from 'node:os';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { Plan } from './plan-spec.js';
import { schedule, type ScheduleSummary, type Executor, type StageResult } from './scheduler.js';
import { LocalExecutor } from './local.js';
import { createProgressView } from './progress.js';
import { createRunLog, recordStage, updateRunLog, type RunStatus } from '../tracking/run-log.js';
import { METADD_VERSION } from '../util/version.js';

export interface RunOptions {
  jobs?: number;
  force?: boolean;
  executor?: Executor;
  signal?: AbortSignal;
  quiet?: boolean;
}

export interface RunOutcome extends ScheduleSummary {
  runId: string;
}

function gitCommit(dir: string): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/**
 * Writes the stage definitions into the store, opens a run log (the local record of this
 * invocation, from which MLflow is synced), and runs the DAG.
 */
export async function runPlan(plan: Plan, options: RunOptions = {}): Promise<RunOutcome> {
  for (const key of plan.dag.order) {
    const node = plan.dag.nodes.get(key);
    if (!node) continue;
    const { cells: _cells, ...def } = node;
    plan.store.writeStageDef(def);
  }
  const runId = newRunId();
  const root = plan.store.root;
  await createRunLog(root, {
    runId,
    spec: { name: plan.resolved.base.name, path: plan.resolved.loaded.file },
    resolvedSpec: plan.resolved.base as unknown as Record<string, unknown>,
    cells: plan.resolved.cells.map((c) => ({ index: c.index, coords: c.coords })),
    startedAt: new Date().toISOString(),
    gitCommit: gitCommit(plan.resolved.loaded.projectRoot),
    metaddVersion: METADD_VERSION,
    backend: plan.backend,
  });
  const jobs = options.jobs ?? plan.resolved.base.executor?.jobs ?? cpus().length;
  const executor = options.executor ?? new LocalExecutor(plan.store, { force: options.force });
  const view = options.quiet ? undefined : createProgressView(plan.dag);
  const recording: Promise<unknown>[] = [];
  const record = (r: StageResult): void => {
    if (r.status === 'pending' || r.status === 'running') return;
    recording.push(recordStage(root, runId, { key: r.key, kind: r.kind, label: r.label, status: r.status, ...(r.error ? { error: r.error } : {}) }));
  };
  let summary: ScheduleSummary;
  try {
    summary = await schedule(plan.dag, plan.store, executor, {
      jobs,
      force: options.force,
      signal: options.signal,
      onEvent: (e) => {
        view?.onEvent(e);
        if (e.type === 'result') record(e.result);
      },
    });
  } finally {
    view?.stop();
  }
  await Promise.all(recording);
  const failed = summary.results.some((r) => r.status === 'failed' || r.status === 'skipped');
  const status: RunStatus = summary.interrupted ? 'interrupted' : failed ? 'failed' : 'finished';
  await updateRunLog(root, runId, { status, finishedAt: new Date().toISOString() });
  return { ...summary, runId };
}
