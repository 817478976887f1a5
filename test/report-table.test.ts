import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, resultsCsv } from '../src/report/build.js';
import { collect } from '../src/report/collect.js';
import { archHeader, normalizeReport, reportFactPaths } from '../src/report/config.js';
import { tableToMarkdown } from '../src/report/markdown.js';
import { baselineTable, effectTable } from '../src/report/effect.js';
import { layoutTable, type ReferenceRow, type ResultRow, type TableModel } from '../src/report/table.js';
import type { Report } from '../src/spec/types.generated.js';
import { FixtureStore, tempDir, writeSweep, type SweepCell, removeFixtures } from './report-fixtures.js';

after(removeFixtures);

const ARCHS = ['convnet', 'mlp'];

/**
 * dc x {1, 10} (listed first on purpose) and random x {1, 10}, seeds {0, 1}. Missing from the store:
 * both seeds of (dc, 10, mlp), and seed 1 of (dc, 1, convnet).
 */
function partialSweep(): SweepCell[] {
  const cells: SweepCell[] = [];
  for (const method of ['dc', 'random']) {
    for (const ipc of [1, 10]) {
      for (const seed of [0, 1]) {
        const base = method === 'dc' ? 0.8 : 0.6;
        const results: SweepCell['results'] = { convnet: [base + ipc / 100, base + ipc / 100 + 0.02], mlp: [base - 0.1, base - 0.08] };
        if (method === 'dc' && ipc === 10) results.mlp = undefined;
        if (method === 'dc' && ipc === 1 && seed === 1) results.convnet = undefined;
        cells.push({ facts: { 'distill.method': method, 'distill.ipc': ipc, seed }, coords: { 'distill.method': method, 'distill.ipc': ipc, seed }, results });
      }
    }
  }
  return cells;
}

async function layout(cells: SweepCell[], report: Report = {}, archs = ARCHS): Promise<{ tables: TableModel[]; missing: number }> {
  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'tbl', archs, cells, report);
  const data = await collect(params, source);
  const cfg = normalizeReport(report);
  return { tables: cfg.tables.map((t) => layoutTable(cfg, t, data.cells)), missing: data.missing.length };
}

const results = (t: TableModel): ResultRow[] => t.rows.filter((r): r is ResultRow => r.kind === 'result');
const rowOf = (t: TableModel, ...labels: string[]): ResultRow => {
  const r = results(t).find((x) => x.labels.join('/') === labels.join('/'));
  assert.ok(r, `row ${labels.join('/')}`);
  return r;
};

test('a partial sweep: missing entries stay missing, partial ones are marked, the random baseline sorts first', async () => {
  const { tables, missing } = await layout(partialSweep());
  const t = tables[0];
  assert.equal(missing, 3, 'two mlp evaluations and one convnet evaluation are not in the store');
  assert.deepEqual(results(t).map((r) => r.labels.join(' ')), ['Random 1', 'Random 10', 'DC 1', 'DC 10']);
  assert.equal(t.complete, false);

  const dc10 = rowOf(t, 'DC', '10');
  assert.equal(dc10.entries.mlp.stat, undefined);
  assert.equal(dc10.entries.mlp.status, 'missing');
  assert.equal(dc10.entries.mlp.expected, 2);
  assert.equal(dc10.average?.stat, undefined, "average 'complete' leaves incomplete rows without an average");
  const dc1 = rowOf(t, 'DC', '1');
  assert.equal(dc1.entries.convnet.status, 'partial');
  assert.equal(dc1.entries.convnet.present, 1);
  assert.equal(dc1.entries.convnet.stat?.n, 2, 'only the models of seed 0');
  assert.equal(dc1.average?.status, 'partial', 'an average over a partial entry is marked partial');
  const r10 = rowOf(t, 'Random', '10');
  assert.equal(r10.entries.convnet.status, 'ok');
  assert.ok(r10.average?.stat && Math.abs(r10.average.stat.mean - (0.71 + 0.51) / 2) < 1e-12);

  const md = tableToMarkdown(t);
  const dc10Line = md.split('\n').find((l) => l.startsWith('| DC | 10 |'));
  assert.ok(dc10Line);
  assert.deepEqual(dc10Line.split('|').slice(3, 6).map((s) => s.trim()), ['91.0 ± 1.2', '—', '—'], 'missing shown as —, the complete-only average too (DC is alone at IPC 10 besides the baseline: nothing to be best against)');
  assert.ok(!/\b0\.0\b/.test(md), 'no missing entry printed as zero');
  assert.match(md, /\| DC \| 1 \| 82\.0 ± 1\.4 † \| 71\.0 ± 1\.2 \| 76\.5 † \|/);

  const csv = resultsCsv(tables).split('\n');
  const missingLine = csv.find((l) => l.startsWith('main,result,accuracy,DC / 10,dc,10,mlp,'));
  assert.equal(missingLine, 'main,result,accuracy,DC / 10,dc,10,mlp,,,,,0,2,missing,false');
});

test("average 'partial' averages the present columns and marks them; 'none' drops the column", async () => {
  const { tables } = await layout(partialSweep(), { tables: [{ name: 'p', average: 'partial' }, { name: 'n', average: 'none' }] });
  const dc10 = rowOf(tables[0], 'DC', '10');
  assert.equal(dc10.average?.status, 'partial');
  assert.equal(dc10.average?.present, 1);
  assert.ok(dc10.average?.stat && Math.abs(dc10.average.stat.mean - 0.91) < 1e-12);
  assert.match(tableToMarkdown(tables[0]), /\| DC \| 10 \| 91\.0 ± 1\.2 \| — \| 91\.0 † \|/);
  assert.equal(tables[1].average.shown, false);
  assert.ok(!tableToMarkdown(tables[1]).includes('Avg.'));
});

test('an average over a single column is not shown: one evaluated architecture, or average_columns naming one', async () => {
  const one = partialSweep().map((c) => ({ ...c, results: { convnet: c.results.convnet } }));
  const { tables: single } = await layout(one, {}, ['convnet']);
  assert.equal(single[0].average.shown, false);
  assert.equal(rowOf(single[0], 'Random', '10').average, undefined);
  assert.ok(!tableToMarkdown(single[0]).includes('Avg.'));
  const { tables: restricted } = await layout(partialSweep(), { tables: [{ name: 'm', average_columns: ['mlp'] }] });
  assert.equal(restricted[0].average.shown, false);
  const { tables: both } = await layout(partialSweep(), { tables: [{ name: 'b', average_columns: ['mlp', 'convnet'] }] });
  assert.equal(both[0].average.shown, true);
});

test('best per column within each IPC, never a baseline; ties at the printed precision are all best', async () => {
  const cells: SweepCell[] = [];
  const acc: Record<string, number> = { 'random-1': 0.99, 'dc-1': 0.8, 'dm-1': 0.8004, 'dc-10': 0.9, 'dm-10': 0.85 };
  for (const key of Object.keys(acc)) {
    const [method, ipc] = key.split('-');
    cells.push({ facts: { 'distill.method': method, 'distill.ipc': Number(ipc) }, coords: {}, results: { convnet: [acc[key]] } });
  }
  const { tables } = await layout(cells, {}, ['convnet']);
  const t = tables[0];
  const best = Object.fromEntries(results(t).map((r) => [r.labels.join('-'), r.entries.convnet.best]));
  assert.deepEqual(best, { 'Random-1': false, 'DC-1': true, 'DM-1': true, 'DC-10': true, 'DM-10': false });
  // A single evaluation has no spread: the mean alone, not a measured-looking "± 0.0".
  assert.match(tableToMarkdown(t), /\| \*Random\* \| \*1\* \| 99\.0 \|/);
});

test('explicit row order, value labels and published reference rows placed after a row', async () => {
  const { tables } = await layout(partialSweep(), {
    labels: { values: { 'distill.method': { dc: 'DC-gm' } }, architectures: { convnet: 'ConvNet-3' } },
    tables: [
      {
        name: 'main',
        order: { 'distill.method': ['dc', 'random'], 'distill.ipc': [10, 1] },
        best_within: [],
        reference: [
          { label: 'DC (published)', values: { convnet: 97.4 }, std: { convnet: 0.2 }, after: { 'distill.method': 'dc', 'distill.ipc': 10 } },
          { label: 'Whole dataset', values: { convnet: 99.6, mlp: 98 } },
        ],
      },
    ],
  });
  const t = tables[0];
  assert.deepEqual(
    t.rows.map((r) => (r.kind === 'result' ? r.labels.join(' ') : `ref:${r.label}`)),
    ['DC-gm 10', 'ref:DC (published)', 'DC-gm 1', 'Random 10', 'Random 1', 'ref:Whole dataset'],
  );
  const ref = t.rows[1] as ReferenceRow;
  assert.ok(Math.abs((ref.values.convnet?.mean ?? 0) - 0.974) < 1e-12 && ref.values.convnet?.std === 0.002, 'published percent / 100');
  assert.equal(ref.values.mlp, undefined);
  assert.equal(t.columns[0].header, 'ConvNet-3');
  const whole = t.rows[5] as ReferenceRow;
  assert.ok(whole.average !== undefined && Math.abs(whole.average - 0.988) < 1e-12);
  // A reference never wins: 97.4 > every computed convnet entry, yet the best stays computed.
  assert.equal(rowOf(t, 'DC-gm', '10').entries.convnet.best, true);
  assert.ok(tableToMarkdown(t).includes('| *DC (published)* |  | 97.4 ± 0.2 |  |  |'), 'reference row: label, blank keys, plain (never bold) numbers');
});

test('seen/unseen: the MetaDD auxiliaries of the cells that ran MetaDD, seen columns first', async () => {
  const cells: SweepCell[] = ['none', 'metadd'].map((arm) => ({
    facts: { 'distill.method': 'dc', 'distill.ipc': 10, 'metadd.arm': arm, 'metadd.aux': ['convnet', { name: 'resnet18', head: 'gap' }] },
    coords: { 'metadd.arm': arm },
    results: { mlp: [0.7], alexnet: [0.6], resnet18: [0.75], convnet: [0.8] },
  }));
  const archs = ['mlp', 'alexnet', 'resnet18', 'convnet'];
  const { tables } = await layout(cells, { tables: [{ name: 'auto' }, { name: 'none', groups: 'none' }, { name: 'explicit', groups: [{ label: 'Conv', columns: ['convnet', 'alexnet'] }] }] }, archs);
  const [auto, none, explicit] = tables;
  assert.deepEqual(auto.rowPaths, ['distill.method', 'distill.ipc', 'metadd.arm'], 'the swept arm becomes a row key');
  assert.deepEqual(auto.groups, [
    { label: 'Seen', columns: ['resnet18', 'convnet'] },
    { label: 'Unseen', columns: ['mlp', 'alexnet'] },
  ]);
  assert.deepEqual(auto.columns.map((c) => c.arch), ['resnet18', 'convnet', 'mlp', 'alexnet']);
  assert.deepEqual(results(auto).map((r) => r.labels[2]), ['base', '+MetaDD']);
  assert.equal(none.groups, undefined);
  assert.deepEqual(none.columns.map((c) => c.arch), archs);
  assert.deepEqual(explicit.groups, [
    { label: 'Conv', columns: ['convnet', 'alexnet'] },
    { label: '', columns: ['mlp', 'resnet18'] },
  ]);

  // Without the aux fact, the metadd stage's parameters (stage.json of the set) name the auxiliaries.
  const fromStage: SweepCell[] = cells.map((c) => ({
    ...c,
    facts: { 'distill.method': 'dc', 'distill.ipc': 10, 'metadd.arm': c.facts['metadd.arm'] },
    setKind: c.facts['metadd.arm'] === 'metadd' ? 'metadd' : 'distill',
    setParams: c.facts['metadd.arm'] === 'metadd' ? { aux: [{ name: 'alexnet', width: 64, head: 'gap' }] } : {},
  }));
  const staged = await layout(fromStage, {}, archs);
  assert.deepEqual(staged.tables[0].groups, [
    { label: 'Seen', columns: ['alexnet'] },
    { label: 'Unseen', columns: ['mlp', 'resnet18', 'convnet'] },
  ]);
  const unknown = await layout(fromStage.map((c) => ({ ...c, setParams: {} })), {}, archs);
  assert.equal(unknown.tables[0].groups, undefined);
  assert.ok(unknown.tables[0].notes.some((n) => n.includes('not split into seen and unseen')));

  const noMetadd = await layout([{ ...cells[0], coords: {} }], {}, archs);
  assert.equal(noMetadd.tables[0].groups, undefined, 'without a MetaDD cell there is nothing seen');
});

test('swept axes that vary become row keys unless pooled; where filters cells; declared columns that nobody evaluated show as missing', async () => {
  const cells: SweepCell[] = [];
  for (const epochs of [10, 20]) {
    for (const seed of [0, 1]) {
      for (const ds of ['mnist', 'fashion-mnist']) {
        cells.push({ facts: { 'distill.method': 'random', 'distill.ipc': 1, 'dataset.name': ds }, coords: { 'eval.epochs': epochs, seed, 'dataset.name': ds }, results: { convnet: [0.5 + epochs / 100] } });
      }
    }
  }
  const { tables } = await layout(cells, { tables: [{ name: 'mnist', where: { 'dataset.name': 'mnist' }, columns: ['convnet', 'vgg11'] }, { name: 'pooled' }] }, ['convnet']);
  const [mnist, pooled] = tables;
  assert.deepEqual(mnist.rowPaths, ['distill.method', 'distill.ipc', 'eval.epochs'], 'dataset.name is constant after the filter; seed is pooled');
  assert.equal(results(mnist).length, 2);
  assert.equal(results(mnist)[0].entries.convnet.stat?.n, 2, 'two seeds pooled');
  assert.equal(results(mnist)[0].entries.vgg11.status, 'missing');
  assert.equal(results(mnist)[0].entries.vgg11.expected, 0);
  assert.ok(mnist.notes.some((n) => n.includes("'vgg11'")));
  assert.deepEqual(pooled.rowPaths, ['distill.method', 'distill.ipc', 'eval.epochs', 'dataset.name']);
});

test("cells that share their stages (an axis only another method reads) count those evaluation models once", async () => {
  // Random-subset cells swept over an SRe2L setting: the compiler gives them null for it and the same
  // set and evaluation inputs (test/dag-sre2l.test.ts), so the Random row pools one cell's models.
  const cells: SweepCell[] = [];
  for (const init of ['noise', 'real']) {
    cells.push({ facts: { 'distill.method': 'random', 'distill.ipc': 1, 'distill.sre2l.init': null }, coords: { 'distill.method': 'random', 'distill.sre2l.init': init }, results: { convnet: [0.5, 0.56] } });
    cells.push({ facts: { 'distill.method': 'sre2l', 'distill.ipc': 1, 'distill.sre2l.init': init }, coords: { 'distill.method': 'sre2l', 'distill.sre2l.init': init }, results: { convnet: init === 'real' ? [0.6, 0.62] : [0.4, 0.42] } });
  }
  const store = new FixtureStore();
  const report: Report = { rows: ['distill.method', 'distill.sre2l.init', 'distill.ipc'] };
  const { params, source } = writeSweep(store, 'shared', ['convnet'], cells, report);
  params.cells[2] = { ...params.cells[2], set: params.cells[0].set, evals: params.cells[0].evals };
  const data = await collect(params, source);
  assert.equal(data.expectedEvals, 3, 'the shared evaluation is expected once');
  assert.equal(data.presentEvals, 3);
  const cfg = normalizeReport(report);
  const t = layoutTable(cfg, cfg.tables[0], data.cells);
  assert.deepEqual(results(t).map((r) => r.labels.join(' ')), ['Random – 1', 'SRe2L noise 1', 'SRe2L real 1']);
  const random = rowOf(t, 'Random', '–', '1');
  assert.equal(random.entries.convnet.stat?.n, 2, 'two models, not the same two twice');
  assert.equal(random.entries.convnet.expected, 1);
  assert.ok(Math.abs((random.entries.convnet.stat?.std ?? 0) - Math.sqrt(0.0018)) < 1e-12, 'sample std of 0.50 and 0.56');
});

test('column headers: the built-in name with the variant suffixes of the label, acronyms in capitals; configured labels win', () => {
  const cfg = normalizeReport({});
  assert.equal(archHeader(cfg, 'convnet-w32'), 'ConvNet-w32');
  assert.equal(archHeader(cfg, 'vgg11-w16-bn'), 'VGG-11-w16-BN');
  assert.equal(archHeader(cfg, 'convnet-w32-nonorm-maxpool'), 'ConvNet-w32-nonorm-maxpool');
  assert.equal(archHeader(cfg, 'resnet18-w16-gap'), 'ResNet-18-w16-GAP');
  assert.equal(archHeader(cfg, 'mynet-bn'), 'mynet-bn', 'an unknown architecture keeps its label');
  assert.equal(archHeader(normalizeReport({ labels: { architectures: { 'vgg11-w16-bn': 'VGG-11 (BN)' } } }), 'vgg11-w16-bn'), 'VGG-11 (BN)');
});

test('reportFactPaths names every path the report reads, for the DAG compiler', () => {
  const paths = reportFactPaths({ rows: ['distill.method', 'distill.ipc', 'metadd.arm'], tables: [{ name: 'a', where: { 'dataset.name': 'mnist' }, rows: ['distill.lr'] }], figures: { accuracy_vs: 'distill.ipc' } });
  for (const p of ['distill.method', 'distill.ipc', 'metadd.arm', 'metadd.aux', 'dataset.name', 'distill.lr', 'seed']) assert.ok(paths.includes(p), p);
  assert.ok(reportFactPaths(undefined).includes('metadd.aux'));
  assert.throws(() => normalizeReport({ tables: [{ name: 'x' }, { name: 'x' }] }), /two tables are named 'x'/);
});

test('the whole report of a partial sweep: every format lists what is missing and writes no zero', async () => {
  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'whole', ARCHS, partialSweep());
  const out = tempDir();
  const model = await buildReport(params, source, out, 'store');
  assert.equal(model.complete, false);
  assert.deepEqual(model.evaluations, { expected: 16, present: 13 });
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /Partial report.*13 of 16 evaluations/);
  assert.equal((md.match(/^\| evaluation \|/gm) ?? []).length, 3, 'three missing evaluations listed');
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { complete: boolean; missing: unknown[]; tables: { rows: { entries?: Record<string, { stat?: unknown; status: string }> }[] }[] };
  assert.equal(json.complete, false);
  assert.equal(json.missing.length, 3);
  const statuses = json.tables[0].rows.flatMap((r) => Object.values(r.entries ?? {}).map((e) => `${e.status}:${e.stat === undefined ? 'none' : 'stat'}`));
  assert.ok(statuses.includes('missing:none') && statuses.includes('partial:stat'));
  assert.ok(!statuses.includes('missing:stat'));
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<td class="missing" data-arch="mlp"/);
});

test('the MetaDD effect table pairs each seed of the MetaDD arm with the control of the same seed', async () => {
  // Seeds move both arms together (+5 points per seed), MetaDD adds 1, 2 and -1 points on convnet.
  const gain: Record<string, number[]> = { convnet: [0.01, 0.02, -0.01], mlp: [0.03, 0.0, 0.01] };
  const cells: SweepCell[] = [];
  for (const arm of ['none', 'control', 'metadd']) {
    for (const seed of [0, 1, 2]) {
      const shift = seed * 0.05 + (arm === 'metadd' ? 1 : 0);
      const results: SweepCell['results'] = {};
      for (const arch of ARCHS) {
        const base = arch === 'convnet' ? 0.7 : 0.6;
        results[arch] = [base + seed * 0.05 - 0.004, base + seed * 0.05 + 0.004].map((a) => a + (shift >= 1 ? gain[arch][seed] : 0));
      }
      if (arm === 'control' && seed === 2) results.mlp = undefined;
      cells.push({ facts: { 'distill.method': 'dm', 'distill.ipc': 10, 'metadd.arm': arm, seed }, coords: { 'metadd.arm': arm, seed }, results });
    }
  }
  cells.push({ facts: { 'distill.method': 'random', 'distill.ipc': 10, 'metadd.arm': 'none', seed: 0 }, coords: { 'distill.method': 'random', seed: 0 }, results: { convnet: [0.6], mlp: [0.5] } });
  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'effect', ARCHS, cells);
  const data = await collect(params, source);
  const cfg = normalizeReport({});
  const table = layoutTable(cfg, cfg.tables[0], data.cells);
  const effect = effectTable(cfg, table, data.cells);
  assert.ok(effect);
  assert.equal(effect.measure, 'difference');
  assert.deepEqual(effect.rowPaths, ['distill.method', 'distill.ipc']);
  assert.deepEqual(results(effect).map((r) => r.labels), [['DM', '10']], 'one row per MetaDD/control pair; no baseline, no base arm');
  const row = results(effect)[0];
  const conv = row.entries.convnet;
  assert.equal(conv.stat?.n, 3);
  assert.ok(Math.abs((conv.stat?.mean ?? NaN) - 0.02 / 3) < 1e-12);
  // Sample std of (0.01, 0.02, -0.01) = sqrt(((1/3)^2 + (4/3)^2 + (5/3)^2) / 2) / 100.
  assert.ok(Math.abs((conv.stat?.std ?? NaN) - Math.sqrt((1 / 9 + 16 / 9 + 25 / 9) / 2) / 100) < 1e-12);
  const pooledControl = rowOf(table, 'DM', '10', '+K iters').entries.convnet.stat?.std ?? 0;
  assert.ok(pooledControl > 0.04 && (conv.stat?.std ?? 1) < 0.02, 'pairing removes the spread the seeds share');
  const mlp = row.entries.mlp;
  assert.deepEqual([mlp.status, mlp.present, mlp.expected], ['partial', 2, 3], 'the control of seed 2 has no mlp result');
  assert.ok(Math.abs((mlp.stat?.mean ?? NaN) - 0.015) < 1e-12);
  // The average is taken per run (both columns present: seeds 0 and 1: (0.01 + 0.03) / 2 and (0.02 + 0) / 2), then over runs.
  assert.deepEqual([row.average?.status, row.average?.present, row.average?.stat?.n], ['partial', 2, 2]);
  assert.ok(Math.abs((row.average?.stat?.mean ?? NaN) - (0.02 + 0.01) / 2) < 1e-12);
  assert.ok(Math.abs((row.average?.stat?.std ?? NaN) - Math.SQRT1_2 * 0.01) < 1e-12);
  assert.ok(effect.notes.some((n) => n === 'DM / 10: MetaDD above its control on Avg. in 2 of 2 paired run(s) (seed 0: +2.0; seed 1: +1.0).'), effect.notes.join('\n'));
  // Per column, on how many runs the sign held: convnet +1, +2, -1; mlp +3, 0 (not above), and no control result for seed 2.
  const header = (arch: string): string => effect.columns.find((c) => c.arch === arch)?.header ?? arch;
  const perColumn = `DM / 10: MetaDD above its control, per column, in: ${header('convnet')} 2 of 3; ${header('mlp')} 1 of 2 paired run(s).`;
  assert.ok(effect.notes.includes(perColumn), effect.notes.join('\n'));
  const md = tableToMarkdown(effect);
  assert.match(md, /\| DM \| 10 \| \+0\.7 ± 1\.5 \|/, md);
  assert.match(md, /\+1\.5 ± 2\.1 †/, 'partial mlp entry, signed');

  // Two cells of one arm with the same seed cannot be paired: the row is left out and a note says why.
  const dup = effectTable({ ...cfg, pool: [] }, table, data.cells);
  assert.equal(dup?.rows.length, 0);
  assert.ok(dup?.notes.some((n) => n.includes('DM / 10: two cells of one row share the pooled values')));
  const noControl = layoutTable(cfg, cfg.tables[0], data.cells.filter((c) => c.facts['metadd.arm'] !== 'control'));
  assert.equal(effectTable(cfg, noControl, data.cells), undefined);

  // The whole report: the effect table follows its table in every format, unless the table turns it off.
  const out = tempDir();
  const model = await buildReport(params, source, out, 'store');
  assert.deepEqual(model.tables.map((t) => t.name), ['main', 'main-effect']);
  const csv = readFileSync(join(out, 'results.csv'), 'utf8');
  assert.match(csv, /^table,kind,measure,row,/);
  assert.match(csv, /\nmain-effect,result,difference,DM \/ 10,dm,10,,convnet,/);
  assert.match(readFileSync(join(out, 'report.tex'), 'utf8'), /\+0\.7/);
  const off = await buildReport({ ...params, report: { tables: [{ name: 'main', effect: false }] } }, source, tempDir(), 'store');
  assert.deepEqual(off.tables.map((t) => t.name), ['main']);

  // Other arm pairs: what the extra iterations alone did to the base set (the control arm minus the
  // base set: 0 on every seed here) and MetaDD against the base set (the MetaDD gain: +1/+2/-1 on convnet).
  const effect3: Report = { tables: [{ name: 'main', effect: { pairs: [['metadd', 'control'], ['control', 'none'], ['metadd', 'none']] } }] };
  const three = await buildReport({ ...params, report: effect3 }, source, tempDir(), 'store');
  assert.deepEqual(three.tables.map((t) => t.name), ['main', 'main-effect', 'main-effect-control-none', 'main-effect-metadd-none']);
  const controlMinusBase = results(three.tables[2])[0];
  assert.ok(Math.abs(controlMinusBase.entries.convnet.stat?.mean ?? NaN) < 1e-12 && (controlMinusBase.entries.convnet.stat?.n ?? 0) === 3);
  assert.match(three.tables[2].title, /^The control arm \(the same iterations without the MetaDD terms\) minus the base set/);
  assert.ok(three.tables[2].notes.some((n) => n.startsWith('DM / 10: the control arm above its base set on Avg. in 0 of 2 paired run(s) (seed 0: 0.0; seed 1: 0.0)')), three.tables[2].notes.join('\n'));
  const metaddMinusBase = results(three.tables[3])[0].entries.convnet;
  assert.deepEqual([metaddMinusBase.stat?.n, metaddMinusBase.status], [3, 'ok'], 'the base arm has every seed that the control arm lacks on mlp');
  assert.ok(Math.abs((metaddMinusBase.stat?.mean ?? NaN) - 0.02 / 3) < 1e-12);
  assert.equal(results(three.tables[3])[0].entries.mlp.status, 'ok');
  // The terminal summary (summary.md): the first table and the paired tables built from it, aligned, with their notes; then how many tables it leaves out.
  const withSecond: Report = { tables: [...(effect3.tables ?? []), { name: 'second', effect: false }] };
  const outDir = tempDir();
  await buildReport({ ...params, report: withSecond }, source, outDir, 'store');
  const summary = readFileSync(join(outDir, 'summary.md'), 'utf8');
  assert.deepEqual(
    summary.split('\n').filter((l) => /^[a-z-]+: /.test(l)).map((l) => l.slice(0, l.indexOf(':'))),
    ['main', 'main-effect', 'main-effect-control-none', 'main-effect-metadd-none'],
  );
  assert.match(summary, /\n\| DM {5}\| 10 {2}\| \+K iters \|/, 'columns padded to one width');
  assert.match(summary, /\n- DM \/ 10: MetaDD above its control on Avg\. in 2 of 2 paired run\(s\) \(seed 0: \+2\.0; seed 1: \+1\.0\)\.\n/);
  assert.ok(!summary.includes('**') && !summary.includes('*Random*'), 'no Markdown emphasis on the terminal');
  assert.match(summary, /\(1 more table\(s\) in the report\)\n$/);
  // An arm compared with itself is a spec error that names the table and suggests a pair.
  assert.throws(() => normalizeReport({ tables: [{ name: 'main', effect: { pairs: [['control', 'control']] } }] }), /table 'main': effect pair \[control, control\] compares an arm with itself; e\.g\. \[metadd, control\]/);
});

test('an effect table pairs every MetaDD variant with the one base or control row, whatever the settings that arm never reads', async () => {
  // As the compiler writes facts: the base set reads no MetaDD setting, the control arm no weight (null).
  // MetaDD's weights {ai} add 2 points on convnet, {var} add 0; tau 0.5 everywhere.
  const weights = [{ ai: 0.2, var: 0 }, { ai: 0, var: 0.2 }];
  const cells: SweepCell[] = [];
  const cell = (arm: string, w: unknown, tau: number | null, seed: number, gain: number): SweepCell => ({
    facts: { 'distill.method': 'dm', 'distill.ipc': 10, 'metadd.arm': arm, 'metadd.relative_weights': w, 'metadd.tau': tau, seed },
    coords: { 'metadd.arm': arm, seed },
    results: { convnet: [0.7 + seed * 0.05 + gain], mlp: [0.6 + seed * 0.05] },
  });
  for (const seed of [0, 1]) {
    cells.push(cell('none', null, null, seed, 0), cell('control', null, 0.5, seed, 0.01));
    weights.forEach((w, i) => cells.push(cell('metadd', w, 0.5, seed, i === 0 ? 0.02 : 0)));
  }
  const store = new FixtureStore();
  const { source, params } = writeSweep(store, 'effect-variants', ARCHS, cells);
  const data = await collect(params, source);
  const cfg = normalizeReport({ rows: ['distill.method', 'distill.ipc', 'metadd.arm', 'metadd.relative_weights', 'metadd.tau'] });
  const table = layoutTable(cfg, cfg.tables[0], data.cells);
  const versus = (pair: ['metadd' | 'control', 'none' | 'control']): [string, number | undefined][] =>
    results(effectTable(cfg, table, data.cells, pair) as TableModel).map((r) => [r.labels.join(' / '), r.entries.convnet.stat?.mean]);
  const close = (got: [string, number | undefined][], want: [string, number][]): void => {
    assert.deepEqual(got.map(([l]) => l), want.map(([l]) => l));
    got.forEach(([, v], i) => assert.ok(Math.abs((v ?? NaN) - want[i][1]) < 1e-12, `${got[i][0]}: ${v}`));
  };
  close(versus(['metadd', 'none']), [['DM / 10 / {"ai":0.2,"var":0} / 0.5', 0.02], ['DM / 10 / {"ai":0,"var":0.2} / 0.5', 0]]);
  close(versus(['metadd', 'control']), [['DM / 10 / {"ai":0.2,"var":0} / 0.5', 0.01], ['DM / 10 / {"ai":0,"var":0.2} / 0.5', -0.01]]);
  // Either way round: the base set against the control arm pairs whatever the control's tau.
  const reversed = results(effectTable(cfg, table, data.cells, ['none', 'control']) as TableModel);
  assert.deepEqual(reversed.map((r) => [r.labels.join(' / '), Math.round((r.entries.convnet.stat?.mean ?? NaN) * 1e6) / 1e6]), [['DM / 10 / – / –', -0.01]]);
  // A setting the control arm does read (tau) still tells its rows apart: no control row at tau 0.3.
  const other = layoutTable(cfg, cfg.tables[0], data.cells.map((c) => (c.facts['metadd.arm'] === 'control' ? { ...c, facts: { ...c.facts, 'metadd.tau': 0.3 } } : c)));
  assert.equal(effectTable(cfg, other, data.cells), undefined);
  // Two base rows that differ only in what the base set does not read cannot both be its reference: left out, with a note.
  const twice = layoutTable(cfg, cfg.tables[0], [...data.cells, ...data.cells.filter((c) => c.facts['metadd.arm'] === 'none').map((c) => ({ ...c, index: c.index + 100, facts: { ...c.facts, 'metadd.tau': 0.3 } }))]);
  const ambiguous = effectTable(cfg, twice, [...data.cells], ['metadd', 'none']);
  assert.equal(ambiguous?.rows.length, 0);
  assert.ok(ambiguous?.notes.includes('DM / 10 / {"ai":0.2,"var":0} / 0.5: 2 rows of the base set agree with it (DM / 10; DM / 10 / 0.3); the row is left out.'), ambiguous?.notes.join('\n'));
});

test('versus_baseline: each row minus the random subset of the same seed, matched on the declared paths', async () => {
  // The random subset's draw moves with the seed (+0/+6/+3 points); DM adds 5, 1 and 2 points on convnet over the draw of its seed.
  const draw = [0, 0.06, 0.03];
  const dmGain = [0.05, 0.01, 0.02];
  const cells: SweepCell[] = [];
  const cell = (method: string, ipc: number, augment: string, seed: number, convnet: number): SweepCell => ({
    facts: { 'distill.method': method, 'distill.ipc': ipc, 'eval.augment': augment, seed },
    coords: { 'distill.method': method, 'distill.ipc': ipc, 'eval.augment': augment, seed },
    results: { convnet: [convnet - 0.002, convnet + 0.002], mlp: [convnet - 0.1] },
  });
  for (const seed of [0, 1, 2]) {
    cells.push(cell('random', 10, 'none', seed, 0.7 + draw[seed]));
    cells.push(cell('dm', 10, 'dsa', seed, 0.7 + draw[seed] + dmGain[seed]));
  }
  cells.push(cell('random', 1, 'none', 0, 0.5), cell('random', 1, 'dsa', 0, 0.52), cell('dm', 1, 'dsa', 0, 0.7));
  cells.push(cell('mtt', 50, 'dsa', 0, 0.8));
  // A path that does not apply to a row (null, shown as '–') is left out of its name in the notes.
  cells.push({ ...cell('dsa', 10, 'dsa', 0, 0.75), facts: { ...cell('dsa', 10, 'dsa', 0, 0.75).facts, 'eval.augment': null } });
  const versus: { match: [string, ...string[]] } = { match: ['distill.ipc'] };
  const report: Report = { rows: ['distill.method', 'distill.ipc', 'eval.augment'], tables: [{ name: 'main', versus_baseline: versus }] };
  assert.ok(reportFactPaths({ tables: [{ name: 'main', versus_baseline: { match: ['distill.ipc'], baseline: { 'eval.epochs': 1000 } } }] }).includes('eval.epochs'), 'the DAG compiler records the paths the comparison reads');

  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'vsbase', ARCHS, cells, report);
  const data = await collect(params, source);
  const cfg = normalizeReport(report);
  const table = layoutTable(cfg, cfg.tables[0], data.cells);
  const vs = baselineTable(cfg, table, data.cells, versus);
  assert.ok(vs);
  assert.equal(vs.name, 'main-vs-baseline');
  assert.equal(vs.measure, 'difference');
  assert.deepEqual(results(vs).map((r) => r.labels), [['DM', '10', 'dsa'], ['DSA', '10', '–']], 'baselines are not compared with themselves; ambiguous and unmatched rows are left out');
  const dm10 = rowOf(vs, 'DM', '10', 'dsa').entries.convnet;
  assert.equal(dm10.stat?.n, 3);
  assert.ok(Math.abs((dm10.stat?.mean ?? NaN) - 0.08 / 3) < 1e-12);
  // Sample std of (5, 1, 2) points: mean 8/3, squared deviations 49/9, 25/9, 4/9.
  assert.ok(Math.abs((dm10.stat?.std ?? NaN) - Math.sqrt((49 / 9 + 25 / 9 + 4 / 9) / 2) / 100) < 1e-12);
  assert.ok(vs.notes.some((n) => n === 'DM / 10 / dsa: above Random / 10 / none on Avg. in 3 of 3 paired run(s) (seed 0: +5.0; seed 1: +1.0; seed 2: +2.0).'), vs.notes.join('\n'));
  assert.ok(vs.notes.some((n) => n === 'DSA / 10: above Random / 10 / none on Avg. in 1 of 1 paired run(s) (seed 0: +5.0).'), vs.notes.join('\n'));
  assert.ok(vs.notes.some((n) => n.startsWith('DM / 10 / dsa: above Random / 10 / none, per column, in: ')), vs.notes.join('\n'));
  assert.ok(!vs.notes.some((n) => n.startsWith('DSA / 10: above Random / 10 / none, per column')), 'one run: its entries already give the signs');
  assert.ok(vs.notes.some((n) => n.startsWith('DM / 1 / dsa: 2 baseline rows agree with it (Random / 1 / none; Random / 1 / dsa) on distill.ipc')), vs.notes.join('\n'));
  assert.ok(vs.notes.some((n) => n.startsWith('MTT / 50 / dsa: no baseline row agrees with it')), vs.notes.join('\n'));

  // Narrowing the qualifying baseline rows resolves the ambiguity at IPC 1 (a single run: no spread).
  const narrowed = baselineTable(cfg, table, data.cells, { match: ['distill.ipc'], baseline: { 'eval.augment': 'none' } });
  const dm1 = rowOf(narrowed as TableModel, 'DM', '1', 'dsa').entries.convnet;
  assert.equal(dm1.stat?.n, 1);
  assert.ok(Math.abs((dm1.stat?.mean ?? NaN) - 0.2) < 1e-12);
  assert.match(tableToMarkdown(narrowed as TableModel), /\| DM \| 1 \| dsa \| \+20\.0 \|/);
  // The title says what a difference is averaged over: paired seeds, or with nothing pooled one run per row.
  assert.match(vs.title, /mean ± sample std over paired runs \(same seed: the baseline drawn for the same seed\) of each run's difference/, vs.title);
  const unpooled = { ...cfg, pool: [] };
  const seed0 = data.cells.filter((c) => c.facts.seed === 0);
  const single = baselineTable(unpooled, layoutTable(unpooled, cfg.tables[0], seed0), seed0, versus);
  assert.match(single?.title ?? '', /mean ± sample std over the one run of each row \(report\.pool is empty: nothing pooled\) of each run's difference/, single?.title);
  // A path that is not a row path is named in a note; no baseline rows at all: no table.
  assert.ok(baselineTable(cfg, table, data.cells, { match: ['distill.ipc', 'eval.epochs'] })?.notes.some((n) => n.startsWith('versus_baseline: eval.epochs is not a row path')));
  const noBaseline = layoutTable(cfg, cfg.tables[0], data.cells.filter((c) => c.facts['distill.method'] !== 'random'));
  assert.equal(baselineTable(cfg, noBaseline, data.cells, versus), undefined);

  // The whole report: the comparison follows its table, only when asked for.
  const model = await buildReport(params, source, tempDir(), 'store');
  assert.deepEqual(model.tables.map((t) => t.name), ['main', 'main-vs-baseline']);
  const off = await buildReport({ ...params, report: { rows: report.rows } }, source, tempDir(), 'store');
  assert.deepEqual(off.tables.map((t) => t.name), ['main']);
});
