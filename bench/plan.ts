import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { planSpec } from '../src/exec/plan-spec.js';
import { estimatePlan } from '../src/exec/estimate.js';

export interface BenchResult {
  name: string;
  unit: string;
  median: number;
  runs: number[];
  note?: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A 10,000-cell sweep (1000 seeds x 10 IPCs) of cheap stages: the spec the planning benchmarks plan. */
function writeSweep(root: string): void {
  writeFileSync(join(root, 'package.json'), '{"name":"bench","private":true}\n');
  const seeds = Array.from({ length: 1000 }, (_, i) => i).join(', ');
  const spec = [
    'name: plan-bench',
    'dataset: {name: mnist}',
    'distill: {method: random, ipc: 1}',
    'eval: {architectures: [convnet, mlp], epochs: 10}',
    'sweep:',
    '  max_cells: 10000',
    '  axes:',
    `    seed: [${seeds}]`,
    '    distill.ipc: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]',
    '',
  ].join('\n');
  writeFileSync(join(root, 'spec.yaml'), spec);
}

/** Planning that sweep: spec resolution, per-cell validation, DAG, cache lookups. */
export function benchPlan(repeats = 5): BenchResult {
  const root = mkdtempSync(join(tmpdir(), 'metadd-bench-plan-'));
  writeSweep(root);
  const runs: number[] = [];
  let stages = 0;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const plan = planSpec(join(root, 'spec.yaml'));
    for (const key of plan.dag.order) plan.store.has(key);
    runs.push((performance.now() - t0) / 1000);
    stages = plan.dag.order.length;
    if (plan.resolved.cells.length !== 10000) throw new Error(`expected 10000 cells, got ${plan.resolved.cells.length}`);
  }
  return { name: 'plan 10,000-cell sweep (in process)', unit: 's', median: median(runs), runs, note: `${stages} stages` };
}

/**
 * What `metadd plan` adds for its time estimate on the same sweep: a cost signature for every stage,
 * matched against the store's finished twins. The store holds one finished stage with a recorded
 * time (a twin of nothing in the sweep), so that the signatures are computed, as in any store that
 * has run something.
 */
export async function benchEstimate(repeats = 5): Promise<BenchResult> {
  const root = mkdtempSync(join(tmpdir(), 'metadd-bench-estimate-'));
  writeSweep(root);
  const plan = planSpec(join(root, 'spec.yaml'));
  const tmp = plan.store.newTmpDir('0'.repeat(64));
  writeFileSync(join(tmp, 'meta.json'), '{}\n');
  plan.store.writeStageDef({ key: '0'.repeat(64), seedKey: '0'.repeat(64), kind: 'dataset', version: 0, params: {}, inputs: {}, label: 'bench', needsTensors: false, backend: null, spec: { name: 'bench', file: '' } });
  await plan.store.commit('0'.repeat(64), 'dataset', 'bench', tmp, false, { seconds: 1, resumed: false });
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const e = estimatePlan(plan, plan.dag.order);
    runs.push((performance.now() - t0) / 1000);
    if (e.toRun !== plan.dag.order.length) throw new Error(`expected ${plan.dag.order.length} stages to run, got ${e.toRun}`);
  }
  return { name: 'time estimate of that plan (in process)', unit: 's', median: median(runs), runs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify([benchPlan(), await benchEstimate()], null, 2));
}
