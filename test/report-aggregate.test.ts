import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStat, pooledStat, stat } from '../src/report/aggregate.js';
import { collect } from '../src/report/collect.js';
import { normalizeReport } from '../src/report/config.js';
import { layoutTable, type ResultRow } from '../src/report/table.js';
import { FixtureStore, writeSweep, removeFixtures } from './report-fixtures.js';

after(removeFixtures);

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

test('stat: mean, sample std (n - 1) and count, by hand', () => {
  // mean 0.92; deviations -0.02, 0, 0.02; sum of squares 0.0008; / (3 - 1) = 0.0004; sqrt = 0.02
  const s = stat([0.9, 0.92, 0.94]);
  assert.ok(s);
  close(s.mean, 0.92, 'mean');
  close(s.std, 0.02, 'std');
  assert.equal(s.n, 3);
  // Not the population std (which would be sqrt(0.0008 / 3) = 0.01633).
  assert.ok(Math.abs(s.std - Math.sqrt(0.0008 / 3)) > 1e-3);
  assert.deepEqual(stat([0.5]), { mean: 0.5, std: 0, n: 1 });
  assert.equal(stat([]), undefined);
});

test('pooledStat pools every model of every run before taking mean and std', () => {
  // values 0.8, 0.9, 1.0: mean 0.9, squares 0.01 + 0 + 0.01 = 0.02, / 2 = 0.01, std 0.1
  const s = pooledStat([[0.8, 0.9], [1.0]]);
  assert.ok(s);
  close(s.mean, 0.9, 'mean');
  close(s.std, 0.1, 'std');
  assert.equal(s.n, 3);
});

test('formatStat prints percent with the asked decimals and a dash, never 0, when missing', () => {
  assert.equal(formatStat({ mean: 0.974, std: 0.002, n: 2 }), '97.4 ± 0.2');
  assert.equal(formatStat({ mean: 0.97444, std: 0.00123, n: 2 }, 2), '97.44 ± 0.12');
  assert.equal(formatStat(undefined), '—');
});

test('a table entry pools seeds x models of a row; the average is the mean of the column means', async () => {
  const store = new FixtureStore();
  const cell = (seed: number, convnet: number[], mlp: number[]) => ({
    facts: { 'distill.method': 'dc', 'distill.ipc': 10, seed },
    coords: { seed },
    results: { convnet, mlp },
  });
  const { params, source } = writeSweep(store, 'agg', ['convnet', 'mlp'], [cell(0, [0.9, 0.92], [0.7]), cell(1, [0.94, 0.96], [0.8])]);
  const data = await collect(params, source);
  const cfg = normalizeReport({});
  const t = layoutTable(cfg, cfg.tables[0], data.cells);
  assert.deepEqual(t.rowPaths, ['distill.method', 'distill.ipc'], 'the swept seed is pooled, not a row key');
  assert.equal(t.rows.length, 1);
  const row = t.rows[0] as ResultRow;
  const conv = row.entries.convnet;
  // convnet: 0.90 0.92 0.94 0.96 -> mean 0.93; squares 9e-4 1e-4 1e-4 9e-4 = 2e-3; / 3; sqrt
  assert.ok(conv.stat);
  close(conv.stat.mean, 0.93, 'convnet mean');
  close(conv.stat.std, Math.sqrt(0.002 / 3), 'convnet std');
  assert.equal(conv.stat.n, 4);
  assert.equal(conv.present, 2);
  assert.equal(conv.expected, 2);
  // mlp: 0.7, 0.8 -> mean 0.75, std sqrt(0.005) = 0.0707
  assert.ok(row.entries.mlp.stat);
  close(row.entries.mlp.stat.mean, 0.75, 'mlp mean');
  close(row.entries.mlp.stat.std, Math.sqrt(0.005), 'mlp std');
  // average of the column means: (0.93 + 0.75) / 2 = 0.84
  assert.ok(row.average?.stat);
  close(row.average.stat.mean, 0.84, 'average');
  assert.equal(row.average.status, 'ok');
  assert.equal(t.complete, true);
});
