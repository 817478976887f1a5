import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_ENTRY } from '../src/exec/local.js';
import { planSpec } from '../src/exec/plan-spec.js';
import type { ArchSpec } from '../src/nn/types.js';
import { archLabel } from '../src/nn/zoo.js';

/**
 * Time per distillation iteration and peak memory per method at IPC 10 (bench/methods.yaml): runs the
 * spec through the CLI into a fresh store with one worker (each stage alone in its process, so the
 * process's peak RSS is the stage's), then reads `seconds_per_iteration` and `peak_rss_mb` from every
 * distill and metadd artifact's meta.json. `--keep` keeps the store; `--store DIR` reuses one.
 */
const spec = fileURLToPath(new URL('../../bench/methods.yaml', import.meta.url));
const storeArg = process.argv.indexOf('--store');
const store = storeArg > 0 ? process.argv[storeArg + 1] : mkdtempSync(join(tmpdir(), 'metadd-bench-methods-'));
const t0 = Date.now();
const r = spawnSync(process.execPath, [CLI_ENTRY, 'run', spec, '--store', store, '-j', '1', '--tracking-uri', 'none'], { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error(`bench-methods: metadd run exited ${r.status}`);
  process.exit(r.status ?? 1);
}
const plan = planSpec(spec, { store });
console.log(`\nmachine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, ${new Date().toISOString()}, total wall ${((Date.now() - t0) / 1000).toFixed(0)} s`);
console.log('| stage | iterations | s / iteration | peak RSS MB |');
console.log('|---|---:|---:|---:|');
for (const key of plan.dag.order) {
  const node = plan.dag.nodes.get(key);
  if (!node || (node.kind !== 'distill' && node.kind !== 'metadd')) continue;
  const metaFile = join(plan.store.objectDir(key), 'meta.json');
  if (!existsSync(metaFile)) continue;
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { iterations?: number; base_iterations?: number; seconds_per_iteration?: number; peak_rss_mb?: number };
  const its = (meta.iterations ?? 0) - (meta.base_iterations ?? 0);
  const fmt = (v: number | undefined, d: number): string => (typeof v === 'number' ? v.toFixed(d) : '-');
  // Metadd stages of the same cell differ only by their auxiliaries: name them.
  const aux = node.kind === 'metadd' ? ` (aux ${(node.params.aux as ArchSpec[]).map((a) => archLabel(a)).join(', ')})` : '';
  console.log(`| ${node.label}${aux} | ${its} | ${fmt(meta.seconds_per_iteration, 2)} | ${fmt(meta.peak_rss_mb, 0)} |`);
}
if (storeArg < 0 && !process.argv.includes('--keep')) rmSync(store, { recursive: true, force: true });
