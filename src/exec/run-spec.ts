import { cpus } from 'node:os';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { Plan } from './plan-spec.js';
import { schedule, type ScheduleSummary, type Executor, type StageResult, type ScheduleOptions } from './scheduler.js';
import { LocalExecutor } from './local.js';
import { createProgressView } from './progress.js';
import { createRunLog, recordStage, updateRunLog, type RunStatus } from '../tracking/run-log.js';
import { METADD_VERSION } from '../util/version.js';
import { LiveSync, describeSync, trackingTarget } from './track-run.js';
import type { Dag } from '../dag/compile.js';
import type { Store } from '../store/store.js';
import { SlurmExecutor } from './slurm/executor.js';

/**
 * Takes the whole DAG at once instead of one stage per call: for batch systems (Slurm) that order
 * the stages themselves through job dependencies. Same events and summary as `schedule`.
 */
export interface DagExecutor {
  readonly name: string;
  runDag(dag: Dag, store: Store, options: DagRunOptions): Promise<ScheduleSummary>;
}
export type DagRunOptions = Omit<ScheduleOptions, 'jobs'> & { quiet?: boolean };

export interface RunOptions {
  jobs?: number;
  force?: boolean;
  executor?: Executor | DagExecutor;
  /** --executor: wins over the spec's executor.kind. */
  executorKind?: 'local' | 'slurm';
  signal?: AbortSignal;
  quiet?: boolean;
  /** --tracking-uri: wins over the spec and MLFLOW_TRACKING_URI; 'none' switches MLflow off. */
  trackingUri?: string;
}

export interface RunOutcome extends ScheduleSummary {
  runId: string;
  /** One line about MLflow: logged, or how many records are pending. */
  tracking: string;
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
  const executorKind = options.executorKind ?? plan.resolved.base.executor?.kind ?? 'local';
  const executor =
    options.executor ??
    (executorKind === 'slurm'
      ? new SlurmExecutor({ config: plan.resolved.base.executor?.slurm, force: options.force, cwd: plan.resolved.loaded.projectRoot })
      : new LocalExecutor(plan.store, { force: options.force }));
  // A DAG executor shows its own live summary (queue states rather than worker bars).
  const view = options.quiet || 'runDag' in executor ? undefined : createProgressView(plan.dag);
  const target = trackingTarget(plan.resolved.base, options.trackingUri);
  const live = target ? new LiveSync(root, runId, target) : undefined;
  const recording: Promise<unknown>[] = [];
  const record = (r: StageResult): void => {
    // An interrupted stage is recorded by the run that finishes it, like one not started.
    if (r.status === 'pending' || r.status === 'running' || r.status === 'interrupted') return;
    const done = recordStage(root, runId, { key: r.key, kind: r.kind, label: r.label, status: r.status, ...(r.error ? { error: r.error } : {}) });
    recording.push(done);
    if (r.status === 'computed') void done.then(() => live?.poke());
  };
  let summary: ScheduleSummary;
  try {
    const onResult = (e: Parameters<NonNullable<ScheduleOptions['onEvent']>>[0]): void => {
      if (e.type === 'result') record(e.result);
    };
    summary = 'runDag' in executor
      ? await executor.runDag(plan.dag, plan.store, { force: options.force, signal: options.signal, quiet: options.quiet, onEvent: onResult })
      : await schedule(plan.dag, plan.store, executor, {
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
  const tracking = live && target
    ? describeSync(target, await live.finish())
    : `MLflow: not configured; recorded locally (run \`metadd ui\` to browse, or set tracking.mlflow.uri / MLFLOW_TRACKING_URI and \`metadd sync\`)`;
  return { ...summary, runId, tracking };
}
