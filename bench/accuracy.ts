import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from '../src/exec/local.js';
import { planSpec } from '../src/exec/plan-spec.js';
import type { EvalResult } from '../src/stages/eval.js';

/**
 * The engine's accuracy benchmark: ConvNet-3 trained on the whole training set of MNIST and
 * Fashion-MNIST (experiments/whole-data.yaml, about an hour of one core per dataset here) must reach
 * the targets below. Runs the spec through the CLI into its own store (cached and resumable: a second
 * call only prints), then prints the test accuracy after every epoch and the verdict. Exit 1 when a
 * target is missed. Not part of `npm run bench` (too long); `node dist/bench/accuracy.js [-j N]`.
 */
const TARGETS: Record<string, number> = { mnist: 0.99, 'fashion-mnist': 0.9 };

const spec = fileURLToPath(new URL('../../experiments/whole-data.yaml', import.meta.url));
const jobsArg = process.argv.indexOf('-j');
const jobs = jobsArg > 0 ? process.argv[jobsArg + 1] : '2';
const t0 = Date.now();
const r = spawnSync(process.execPath, [CLI_ENTRY, 'run', spec, '-j', jobs, '--tracking-uri', 'none'], { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error(`bench-accuracy: metadd run exited ${r.status}`);
  process.exit(r.status ?? 1);
}
const plan = planSpec(spec);
console.log(`\nmachine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, ${new Date().toISOString()}, wall of this call ${((Date.now() - t0) / 1000).toFixed(0)} s`);
console.log('| dataset | architecture | test accuracy after each epoch (%) | final | target | met |');
console.log('|---|---|---|---:|---:|---|');
let missed = 0;
for (const cell of plan.dag.cells) {
  const dataset = cell.cell.spec.dataset.name;
  for (const e of cell.evals) {
    const file = join(plan.store.objectDir(e.key), 'result.json');
    if (!existsSync(file)) throw new Error(`${file}: missing after a successful run`);
    const result = JSON.parse(readFileSync(file, 'utf8')) as EvalResult;
    const target = TARGETS[dataset];
    const met = target === undefined ? 'no target' : result.mean >= target ? 'yes' : 'NO';
    if (met === 'NO') missed++;
    const curve = result.curves.test_accuracy[0].map((a) => (a * 100).toFixed(2)).join(', ');
    console.log(`| ${dataset} | ${e.label} | ${curve} | ${(result.mean * 100).toFixed(2)} | ${target === undefined ? '-' : (target * 100).toFixed(1)} | ${met} |`);
  }
}
process.exit(missed > 0 ? 1 : 0);
