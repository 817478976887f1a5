import { FixtureStore, writeSweep } from './report-fixtures.js';
import { buildReport } from '../src/report/build.js';
const store = new FixtureStore();
const archs = ['convnet', 'resnet18', 'alexnet', 'mlp'];
const cells = [];
for (const method of ['dc', 'random']) for (const ipc of [1, 10, 50]) for (const arm of method === 'random' ? ['none'] : ['none', 'metadd']) for (const seed of [0, 1]) {
  const base = method === 'random' ? 0.5 : 0.7;
  const results: Record<string, number[] | undefined> = {};
  archs.forEach((a, j) => { results[a] = [base + ipc / 200 + j * 0.01 + seed * 0.01 + (arm === 'metadd' ? 0.02 : 0), base + ipc / 200 + 0.005]; });
  if (method === 'dc' && ipc === 50 && seed === 1) results.mlp = undefined;
  cells.push({ facts: { 'distill.method': method, 'distill.ipc': ipc, 'metadd.arm': arm, 'metadd.aux': ['convnet', 'resnet18'], seed }, coords: { 'distill.method': method, 'distill.ipc': ipc, 'metadd.arm': arm, seed }, results, cams: arm === 'metadd' });
}
const { params, source } = writeSweep(store, 'smoke', archs, cells, { tables: [{ name: 'main', reference: [{ label: 'DC (published)', values: { convnet: 91.7 }, std: { convnet: 0.5 }, after: { 'distill.method': 'dc', 'distill.ipc': 1 } }] }] });
const out = '/tmp/rep/smoke-out';
const t0 = Date.now();
const model = await buildReport(params, source, out, 'store');
console.log('built in', Date.now() - t0, 'ms', model.complete, model.missing.length, model.figures.length);
