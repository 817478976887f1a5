import { resolveSpec, type ResolveOptions, type ResolvedSpec } from '../spec/resolve.js';
import { compileDag, type Dag } from '../dag/compile.js';
import { Store } from '../store/store.js';
import { plannedBackend } from '../engine/select.js';
import { datasetDigest, datasetFacts } from '../stages/dataset-facts.js';

export interface PlanOptions {
  sets?: string[];
  backend?: string;
  /** Store root override (--store). */
  store?: string;
  checks?: ResolveOptions['checks'];
}

export interface Plan {
  resolved: ResolvedSpec;
  dag: Dag;
  store: Store;
  backend: string;
}

/** Spec file -> validated cells -> stage DAG over the store. Throws SpecError for an invalid spec. */
export function planSpec(file: string, options: PlanOptions = {}): Plan {
  const resolved = resolveSpec(file, { sets: options.sets, describeDataset: datasetFacts, checks: options.checks });
  const backend = plannedBackend(options.backend ?? resolved.base.backend);
  const dag = compileDag(resolved, { backend, datasetDigest });
  const store = new Store(options.store ?? resolved.storeDir);
  return { resolved, dag, store, backend };
}

export interface PlanCounts {
  kind: string;
  total: number;
  cached: number;
  toRun: number;
}

export function planCounts(plan: Plan): PlanCounts[] {
  const byKind = new Map<string, PlanCounts>();
  for (const key of plan.dag.order) {
    const node = plan.dag.nodes.get(key);
    if (!node) continue;
    const c = byKind.get(node.kind) ?? { kind: node.kind, total: 0, cached: 0, toRun: 0 };
    c.total++;
    if (plan.store.has(key)) c.cached++;
    else c.toRun++;
    byKind.set(node.kind, c);
  }
  return [...byKind.values()];
}
