import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planSpec, type Plan } from '../src/exec/plan-spec.js';
import { publishReport, rebuildReport } from '../src/report/publish.js';
import { makeProject, yaml } from './helpers/project.js';
import { FixtureStore, evalResultJson, gridPng, metricRecords } from './report-fixtures.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const SPEC = yaml`
  name: pub
  description: Random subsets at two IPCs, two seeds.
  dataset: {name: mnist}
  distill: {method: random, ipc: 1}
  eval: {architectures: [convnet, mlp], epochs: 1, models: 2}
  sweep:
    axes:
      distill.ipc: [1, 10]
      seed: [0, 1]
  report:
    tables:
      - name: main
        reference: [{label: 'Random (published)', values: {convnet: 64.9}, source: 'REFERENCE.md'}]
`;

function project(): { root: string; plan: Plan } {
  const root = makeProject({ 'spec.yaml': SPEC });
  roots.push(root);
  return { root, plan: planSpec(join(root, 'spec.yaml'), { backend: 'wasm' }) };
}

/** Writes the artifacts of the plan's cells into its store, as finished stages would, except `skip` ("cell/arch"). */
function fill(plan: Plan, skip: Set<string>): void {
  const store = new FixtureStore(plan.store.root);
  plan.dag.cells.forEach((c, i) => {
    if (!store.has(c.setKey)) {
      store.put(c.setKey, 'distill', { 'grid.png': gridPng(10, c.cell.spec.distill.ipc), 'records.jsonl': metricRecords('loss', [1, 0.5, 0.25]) });
    }
    for (const e of c.evals) {
      if (skip.has(`${i}/${e.label}`) || store.has(e.key)) continue;
      const acc = c.cell.spec.distill.ipc === 1 ? 0.6 : 0.9;
      store.put(e.key, 'eval', { 'result.json': evalResultJson(e.label, [acc + c.cell.spec.seed / 100, acc]) }, { images: c.setKey });
    }
  });
}

function objects(plan: Plan): string[] {
  const dir = join(plan.store.root, 'objects');
  return existsSync(dir) ? readdirSync(dir).flatMap((s) => readdirSync(join(dir, s))).sort() : [];
}

test('rebuildReport on a partial store: a partial report that lists what is missing, and nothing computed', async () => {
  const { root, plan } = project();
  fill(plan, new Set(['3/mlp', '2/convnet']));
  // A failed stage leaves its log behind: the report says so.
  const failed = plan.dag.cells[3].evals.find((e) => e.label === 'mlp');
  assert.ok(failed);
  mkdirSync(join(plan.store.root, 'logs'), { recursive: true });
  writeFileSync(join(plan.store.root, 'logs', `${failed.key}.log`), 'Error: out of memory\n');
  // A stale file of an earlier report must not survive the rebuild.
  mkdirSync(join(root, 'reports', 'pub'), { recursive: true });
  for (const f of ['report.md', 'results.json', 'stale.png']) writeFileSync(join(root, 'reports', 'pub', f), 'old');
  const before = objects(plan);

  const result = await rebuildReport(plan);
  assert.equal(result.dir, join(root, 'reports', 'pub'));
  assert.equal(result.from, 'store');
  assert.equal(result.complete, false);
  assert.deepEqual(result.evaluations, { expected: 8, present: 6 });
  assert.deepEqual(objects(plan), before, 'no artifact was added to the store');
  assert.ok(!existsSync(join(result.dir, 'stale.png')));
  for (const f of ['report.md', 'report.html', 'report.tex', 'results.csv', 'results.json', 'summary.md', 'tables/main.tex']) assert.ok(existsSync(join(result.dir, f)), f);

  const reasons = Object.fromEntries(result.missing.map((m) => [m.where, m.reason]));
  assert.equal(Object.keys(reasons).length, 2);
  const failedReason = Object.entries(reasons).find(([w]) => w.endsWith(': mlp'))?.[1];
  assert.match(failedReason ?? '', /^failed or interrupted \(log: .*\.log\)$/);
  assert.ok(Object.values(reasons).includes('not computed yet'));
  assert.ok(result.missing.every((m) => m.label?.startsWith('eval ')), 'missing stages are named by their plan label');

  const md = readFileSync(join(result.dir, 'report.md'), 'utf8');
  assert.match(md, /Partial report\*\*: 6 of 8 evaluations/);
  assert.match(md, /## Missing results/);
  // IPC 10 pools seeds 0 and 1: seed 1 lacks mlp, seed 0 lacks convnet, so both entries are partial
  // (convnet: seed 1 alone, 0.91 and 0.90: mean 90.5, sample std 0.71).
  assert.match(md, /\| \*Random\* \| \*10\* \| 90\.5 ± 0\.7 † \| 90\.0 ± 0\.0 † \| 90\.3 † \|/);
  assert.ok(md.includes('| *Random (published)* |  | 64.9 |  |  |'));
});

test('`metadd report SPEC` rebuilds from the store; after a full run publishReport copies the report stage artifact', async () => {
  const { root, plan } = project();
  fill(plan, new Set(['0/convnet']));
  const before = objects(plan);
  const out = execFileSync(process.execPath, [CLI, 'report', 'spec.yaml', '--backend', 'wasm'], { cwd: root, encoding: 'utf8' });
  assert.match(out, /report: .*reports\/pub\/report\.html/);
  // The first table, column-aligned, before the pointer to the files (summary.md).
  assert.match(out, /^main: Test accuracy \(%\)/m);
  assert.match(out, /\n\| Random {13}\| 1 {3}\| 60\.5 ± 0\.7 † \| 60\.3 ± 0\.5 \| 60\.4 † \|\n/);
  assert.ok(out.indexOf('| Random |') < out.indexOf('report: '), out);
  assert.match(out, /partial: 7 of 8 evaluations present; missing:\n {2}evaluation .*: convnet: not computed yet/);
  assert.deepEqual(objects(plan), before);
  assert.ok(existsSync(join(root, 'reports', 'pub', 'report.html')));

  // Finish the sweep and run the real report stage through the worker, as `metadd run` would.
  fill(plan, new Set());
  for (const key of plan.dag.order) {
    const node = plan.dag.nodes.get(key);
    assert.ok(node);
    const { cells: _cells, ...def } = node;
    plan.store.writeStageDef(def);
  }
  execFileSync(process.execPath, [CLI, 'exec-stage', '--store', plan.store.root, plan.dag.reportKey], { cwd: root, encoding: 'utf8' });
  assert.ok(plan.store.has(plan.dag.reportKey), 'the report stage committed its artifact');
  const artifact = plan.store.objectDir(plan.dag.reportKey);
  const records = readFileSync(join(artifact, 'records.jsonl'), 'utf8');
  assert.ok(records.includes('{"type":"artifact","path":"report.html"}'));

  const published = await publishReport(plan);
  assert.equal(published.from, 'artifact');
  assert.equal(published.complete, true);
  assert.deepEqual(published.evaluations, { expected: 8, present: 8 });
  for (const f of ['report.html', 'report.md', 'report.tex', 'results.csv', 'results.json', 'summary.md']) {
    assert.equal(readFileSync(join(published.dir, f), 'utf8'), readFileSync(join(artifact, f), 'utf8'), `${f} copied from the artifact`);
  }
  for (const f of ['manifest.json', 'stage.json', 'records.jsonl']) assert.ok(!existsSync(join(published.dir, f)), `${f} stays in the store`);
  assert.ok(readdirSync(join(published.dir, 'images')).length === 2, 'one image grid per row (two IPCs)');
  assert.ok(!readFileSync(join(published.dir, 'report.md'), 'utf8').includes('Partial report'));
});

test('a report never replaces a folder that is not a report: `--out docs` fails and docs/ keeps its files', () => {
  const { root, plan } = project();
  fill(plan, new Set());
  const docs = join(root, 'docs');
  mkdirSync(docs, { recursive: true });
  writeFileSync(join(docs, 'notes.md'), 'my notes\n');
  let stderr = '';
  let status: number | null = 0;
  try {
    execFileSync(process.execPath, [CLI, 'report', 'spec.yaml', '--backend', 'wasm', '--out', 'docs'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    ({ stderr, status } = err as { stderr: string; status: number | null });
  }
  assert.notEqual(status, 0, 'non-zero exit');
  assert.match(stderr, /docs exists and is not a metadd report .* would delete its contents\. Choose a new or empty folder, e\.g\. --out .*docs\/report/);
  assert.deepEqual(readdirSync(docs), ['notes.md']);
  assert.equal(readFileSync(join(docs, 'notes.md'), 'utf8'), 'my notes\n');
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('tmp-report')), [], 'no temporary folder left behind');

  // A store that does not exist (a mistyped --store) is an error, not an empty report over the last one.
  const missing = spawnSync(process.execPath, [CLI, 'report', 'spec.yaml', '--backend', 'wasm', '--store', 'no-such-store', '--out', 'docs'], { cwd: root, encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^metadd: no store at .*no-such-store \(--store\): nothing has run there; run a spec with `metadd run` first, or give --store the folder it ran in\n$/);
  assert.deepEqual(readdirSync(docs), ['notes.md']);
  const ls = spawnSync(process.execPath, [CLI, 'cache', 'ls', '--store', 'no-such-store'], { cwd: root, encoding: 'utf8' });
  assert.equal(ls.status, 1);
  assert.match(ls.stderr, /no store at .*no-such-store/);
  assert.ok(!existsSync(join(root, 'no-such-store')), 'nothing created');

  // An empty folder, and then the report it now holds, are replaced.
  const out = join(root, 'out');
  mkdirSync(out);
  for (let i = 0; i < 2; i++) {
    execFileSync(process.execPath, [CLI, 'report', 'spec.yaml', '--backend', 'wasm', '--out', 'out'], { cwd: root, encoding: 'utf8' });
    assert.ok(existsSync(join(out, 'report.md')) && existsSync(join(out, 'results.json')));
  }
});
