import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, REPORT_FORMAT } from '../src/report/build.js';
import { collect } from '../src/report/collect.js';
import { normalizeReport } from '../src/report/config.js';
import { readSetFacts, setStatsRows, setsCsv } from '../src/report/sets.js';
import { layoutTable } from '../src/report/table.js';
import { pixelStats } from '../src/distill/pixel-stats.js';
import { writeNpy } from '../src/store/npy.js';
import { createRng } from '../src/util/rng.js';
import { FixtureStore, fakeKey, metricRecords, tempDir, writeSweep, removeFixtures, type SweepCell } from './report-fixtures.js';

after(removeFixtures);

const meta = (over: Record<string, unknown>): string => JSON.stringify({ method: 'mtt', ipc: 1, ...over });
const pixels = (std: number, bound: number, outside: number) => ({ mean: 0, std, min: -bound, max: bound, outside_real_range: outside, outside_distance: outside / 10 });

/**
 * Two seeds of MTT whose meta.json records everything, and one DM set from before meta.json had
 * `pixels`: its statistics come from images.npy and its dataset's normalisation.
 */
function sweep(store: FixtureStore) {
  const dataset = fakeKey('sets-dataset');
  store.put(dataset, 'dataset', { 'meta.json': JSON.stringify({ name: 'tiny', mean: [0.5], std: [0.25] }) });
  const cells: SweepCell[] = [
    {
      facts: { 'distill.method': 'mtt', 'distill.ipc': 1 },
      coords: { 'distill.method': 'mtt', seed: 0 },
      results: { convnet: [0.5, 0.52] },
      setFiles: {
        'meta.json': meta({ iterations: 60, seconds_per_iteration: 2, cpu_seconds_per_iteration: 1, peak_rss_mb: 100, learned_lr: 0.01, pixels: pixels(1.2, 3, 0.3) }),
        // A MetaDD-like set: a loss curve, and once-per-stage metrics of its base stage and its own.
        'records.jsonl': ['distill.loss', 'seconds_per_iteration', 'cpu_seconds_per_iteration', 'peak_rss_mb', 'pixel_std', 'base.pixel_outside_distance'].map((k) => metricRecords(k, [3, 2, 1])).join(''),
      },
    },
    {
      facts: { 'distill.method': 'mtt', 'distill.ipc': 1 },
      coords: { 'distill.method': 'mtt', seed: 1 },
      results: { convnet: [0.54, 0.5] },
      setFiles: { 'meta.json': meta({ iterations: 60, seconds_per_iteration: 4, cpu_seconds_per_iteration: 2, peak_rss_mb: 300, learned_lr: 0.03, pixels: pixels(1.4, 5, 0.5) }) },
    },
    {
      facts: { 'distill.method': 'dm', 'distill.ipc': 1 },
      coords: { 'distill.method': 'dm', seed: 0 },
      results: { convnet: [0.6, 0.6] },
      setFiles: { 'meta.json': JSON.stringify({ method: 'dm', ipc: 1, iterations: 5, seconds_per_iteration: 1.5, peak_rss_mb: 90 }) },
      setInputs: { dataset },
    },
  ];
  const built = writeSweep(store, 'sets', ['convnet'], cells, { rows: ['distill.method'] });
  // The DM set's images: 3 classes x 1 image of 1 x 4 x 4, some beyond [-2, 2].
  const rng = createRng(`report-sets-${Date.now()}`);
  const images = Float32Array.from({ length: 3 * 16 }, () => (rng.next() - 0.5) * 6);
  writeNpy(join(store.dir(fakeKey('sets-set-2')), 'images.npy'), images, [3, 1, 4, 4]);
  return { ...built, images };
}

test('set statistics: medians of cost, means of pixel statistics with the std range; older sets computed from images.npy', async () => {
  const store = new FixtureStore();
  const { params, source, images } = sweep(store);
  const cfg = normalizeReport(params.report);
  const data = await collect(params, source);
  const table = layoutTable(cfg, cfg.tables[0], data.cells);
  const rows = setStatsRows(table, data.cells);
  const mtt = rows.find((r) => r.labels[0] === 'MTT');
  const dm = rows.find((r) => r.labels[0] === 'DM');
  assert.ok(mtt && dm, `rows ${rows.map((r) => r.labels.join('/')).join(', ')}`);
  assert.equal(mtt.sets, 2);
  assert.equal(mtt.read, 2);
  assert.deepEqual(mtt.iterations, [60]);
  assert.equal(mtt.secondsPerIteration, 3);
  assert.equal(mtt.cpuSecondsPerIteration, 1.5);
  assert.equal(dm.cpuSecondsPerIteration, undefined, 'a set from before CPU time was recorded');
  assert.equal(mtt.peakRssMb, 200);
  assert.ok(Math.abs((mtt.learnedLr ?? 0) - 0.02) < 1e-12);
  assert.ok(mtt.pixelStd && Math.abs(mtt.pixelStd.mean - 1.3) < 1e-12 && mtt.pixelStd.min === 1.2 && mtt.pixelStd.max === 1.4);
  assert.ok(Math.abs((mtt.outsideRealRange ?? 0) - 0.4) < 1e-12);
  assert.ok(Math.abs((mtt.outsideDistance ?? 0) - 0.04) < 1e-12);
  assert.equal(mtt.pixelMin, -4);
  // The DM set recorded no pixels: they are computed with the dataset's range [-2, 2].
  const want = pixelStats(images, [3, 1, 4, 4], { mean: [0.5], std: [0.25] });
  assert.ok(want.outside_real_range !== null && want.outside_real_range > 0);
  assert.deepEqual(
    { std: dm.pixelStd?.mean, min: dm.pixelMin, max: dm.pixelMax, outside: dm.outsideRealRange, distance: dm.outsideDistance },
    { std: want.std, min: want.min, max: want.max, outside: want.outside_real_range, distance: want.outside_distance },
  );
  assert.equal(dm.learnedLr, undefined);
  // A truncated images.npy leaves the statistics blank instead of failing the report.
  const broken = join(store.dir(fakeKey('sets-set-2')), 'images.npy');
  writeFileSync(broken, readFileSync(broken).subarray(0, 40));
  assert.equal(readSetFacts({}, store.dir(fakeKey('sets-set-2')), store.dir(fakeKey('sets-dataset'))).pixels, undefined);

  // sets.csv: one line per set, its coordinates and facts.
  const csv = setsCsv(data.cells).trim().split('\n');
  assert.equal(csv.length, 4);
  assert.equal(csv[0], 'distill.method,seed,kind,key,iterations,seconds_per_iteration,cpu_seconds_per_iteration,peak_rss_mb,learned_lr,pixel_mean,pixel_std,pixel_min,pixel_max,pixel_outside_real_range,pixel_outside_distance');
  assert.equal(csv[2], `mtt,1,distill,${fakeKey('sets-set-1')},60,4,2,300,0.03,0,1.4,-5,5,0.5,0.05`);
});

test('the report writes the set statistics into report.md, report.html, results.json and sets.csv', async () => {
  const store = new FixtureStore();
  const { params, source } = sweep(store);
  const out = tempDir();
  const model = await buildReport(params, source, out, 'store');
  assert.equal(model.setStats?.table, 'main');
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /## Set statistics \(rows of main\)/);
  assert.match(md, /\| MTT \| 2 \| 60 \| 3\.00 \| 1\.50 \| 200 \| 1\.30 \(1\.20–1\.40\) \| -4\.00 \/ 4\.00 \| 40\.0 \| 0\.040 \| 0\.0200 \|/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<h2 id="set-statistics">/);
  const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { format: string; set_statistics: { table: string; rows: { labels: string[] }[] } };
  assert.equal(json.format, REPORT_FORMAT);
  assert.deepEqual(json.set_statistics.rows.map((r) => r.labels[0]).sort(), ['DM', 'MTT']);
  assert.equal(readFileSync(join(out, 'sets.csv'), 'utf8').trim().split('\n').length, 4);
  // Once-per-stage metrics are set statistics, not curves: only the loss is plotted.
  const curves = model.figures.filter((f) => f.section === 'curves' && f.id.startsWith('curve-')).map((f) => f.id);
  assert.deepEqual(curves, ['curve-distill-loss']);
});
