import { cpus } from 'node:os';
import type { Plan } from './plan-spec.js';
import { schedule, type ScheduleSummary, type Executor } from './scheduler.js';
import { LocalExecutor } from './local.js';
import { createProgressView } from './progress.js';

export interface RunOptions {
  jobs?: number;
  force?: boolean;
  executor?: Executor;
  signal?: AbortSignal;
  quiet?: boolean;
}

/** Writes the stage definitions into the store and runs the DAG. */
export async function runPlan(plan: Plan, options: RunOptions = {}): Promise<ScheduleSummary> {
  for (const key of plan.dag.order) {
    const node = plan.dag.nodes.get(key);
    if (!node) continue;
    const { cells: _cells, ...def } = node;
    plan.store.writeStageDef(def);
  }
  const jobs = options.jobs ?? plan.resolved.base.executor?.jobs ?? cpus().length;
  const executor = options.executor ?? new LocalExecutor(plan.store, { force: options.force });
  const view = options.quiet ? undefined : createProgressView(plan.dag);
  try {
    return await schedule(plan.dag, plan.store, executor, {
      jobs,
      force: options.force,
      signal: options.signal,
      onEvent: (e) => view?.onEvent(e),
    });
  } finally {
    view?.stop();
  }
}
