import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { benchEstimate, benchPlan, median, type BenchResult } from './plan.js';
import { CLI_ENTRY } from '../src/exec/local.js';
import { planSpec } from '../src/exec/plan-spec.js';

/**
 * `npm run bench`: the core benchmarks (planning a 10,000-cell sweep; re-running the fully cached
 * quickstart, Node start-up included), then time and peak memory per distillation method and of the
 * MetaDD stage (bench/methods.ts), gradient matching's memory on one tape against per-class tapes
 * (bench/gradmatch-memory.ts), a training step of every zoo architecture (bench/zoo.ts), our wasm GatherV2 against the stock one
 * (bench/gather.ts), an evaluation step on 28x28x1 images (bench/eval-step.ts), the MetaDD terms
 * per image against `metadd.chunk` (bench/metadd-chunk.ts), then the kernel benchmarks (bench/kernels.ts; with `--torch` side
 * by side with PyTorch when bench/.venv exists). Results go to stdout; copy them into
 * docs/benchmarks.md with the machine and date. `--core` runs only the first two. The accuracy
 * benchmark (ConvNet-3 on the whole training sets, about an hour of one core per dataset) is its own
 * command: `node dist/bench/accuracy.js`.
 */
function benchCachedQuickstart(repeats = 5): BenchResult | string {
  const spec = fileURLToPath(new URL('../../experiments/quickstart.yaml', import.meta.url));
  const plan = planSpec(spec);
  const missing = plan.dag.order.filter((k) => !plan.store.has(k)).length;
  if (missing > 0) return `cached quickstart: skipped, ${missing} stage(s) not in ${plan.store.root} (run \`npm run quickstart\` first)`;
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI_ENTRY, 'run', spec], { encoding: 'utf8', env: { ...process.env, MLFLOW_TRACKING_URI: 'none' } });
    runs.push((performance.now() - t0) / 1000);
    if (r.status !== 0 || !/ 0 computed/.test(r.stdout)) throw new Error(`cached quickstart did not run from the cache:\n${r.stdout}${r.stderr}`);
  }
  return { name: 'metadd run quickstart, fully cached (wall, incl. node start-up)', unit: 's', median: median(runs), runs };
}

const results: (BenchResult | string)[] = [benchPlan(), await benchEstimate(), benchCachedQuickstart()];
console.log(`machine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, ${new Date().toISOString()}`);
for (const r of results) {
  if (typeof r === 'string') console.log(r);
  else console.log(`${r.name}: median ${r.median.toFixed(3)} ${r.unit} (runs ${r.runs.map((x) => x.toFixed(3)).join(', ')})${r.note ? `; ${r.note}` : ''}`);
}
if (process.argv.includes('--core')) process.exit(0);
const m = spawnSync(process.execPath, [fileURLToPath(new URL('./methods.js', import.meta.url))], { stdio: 'inherit' });
if (m.status !== 0) process.exit(m.status ?? 1);
const g = spawnSync(process.execPath, [fileURLToPath(new URL('./gradmatch-memory.js', import.meta.url))], { stdio: 'inherit' });
if (g.status !== 0) process.exit(g.status ?? 1);
const z = spawnSync(process.execPath, [fileURLToPath(new URL('./zoo.js', import.meta.url)), '--repeats', '5'], { stdio: 'inherit' });
if (z.status !== 0) process.exit(z.status ?? 1);
const gather = spawnSync(process.execPath, [fileURLToPath(new URL('./gather.js', import.meta.url)), '--repeats', '7'], { stdio: 'inherit' });
if (gather.status !== 0) process.exit(gather.status ?? 1);
const evalStep = spawnSync(process.execPath, [fileURLToPath(new URL('./eval-step.js', import.meta.url)), '--repeats', '5'], { stdio: 'inherit' });
if (evalStep.status !== 0) process.exit(evalStep.status ?? 1);
const chunk = spawnSync(process.execPath, [fileURLToPath(new URL('./metadd-chunk.js', import.meta.url))], { stdio: 'inherit' });
if (chunk.status !== 0) process.exit(chunk.status ?? 1);
const kernelArgs = ['--repeats', '5', ...(existsSync('bench/.venv/bin/python') ? ['--torch'] : [])];
const k = spawnSync(process.execPath, [fileURLToPath(new URL('./kernels.js', import.meta.url)), ...kernelArgs], { stdio: 'inherit' });
process.exit(k.status ?? 1);
