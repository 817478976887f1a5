import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { resolveSpec } from '../src/spec/resolve.js';
import { SpecError } from '../src/spec/errors.js';
import { makeProject, yaml } from './helpers/project.js';

const BASE = yaml`
  name: grid
  dataset: {name: mnist}
  distill: {method: random, ipc: 1}
  eval: {architectures: [convnet]}
`;

function resolveText(text: string) {
  const root = makeProject({ 'spec.yaml': text });
  return resolveSpec(join(root, 'spec.yaml'));
}

test('axes expand to their product, first axis slowest', () => {
  const r = resolveText(`${BASE}sweep:\n  axes:\n    distill.ipc: [1, 10]\n    seed: [0, 1, 2]\n`);
  assert.deepEqual(
    r.cells.map((c) => c.coords),
    [
      { 'distill.ipc': 1, seed: 0 },
      { 'distill.ipc': 1, seed: 1 },
      { 'distill.ipc': 1, seed: 2 },
      { 'distill.ipc': 10, seed: 0 },
      { 'distill.ipc': 10, seed: 1 },
      { 'distill.ipc': 10, seed: 2 },
    ],
  );
  assert.deepEqual(r.cells.map((c) => [c.spec.distill.ipc, c.spec.seed]), [[1, 0], [1, 1], [1, 2], [10, 0], [10, 1], [10, 2]]);
});

test('exclude removes matching cells, include adds cells, duplicates collapse', () => {
  const r = resolveText(
    `${BASE}sweep:\n  axes:\n    distill.ipc: [1, 10]\n    seed: [0, 1]\n  exclude:\n    - {distill.ipc: 10, seed: 1}\n  include:\n    - {distill.ipc: 50, seed: 7}\n    - {distill.ipc: 1, seed: 0}\n`,
  );
  assert.deepEqual(r.cells.map((c) => [c.spec.distill.ipc, c.spec.seed]), [[1, 0], [1, 1], [10, 0], [50, 7]]);
});

test('an invalid sweep value points at the value inside the sweep, once', () => {
  const text = `${BASE}sweep:\n  axes:\n    distill.ipc: [1, -3]\n    seed: [0, 1]\n`;
  const root = makeProject({ 'spec.yaml': text });
  assert.throws(
    () => resolveSpec(join(root, 'spec.yaml')),
    (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.issues.length, 1, JSON.stringify(err.issues));
      const i = err.issues[0];
      assert.equal(i.path, 'distill.ipc');
      assert.deepEqual([i.line, i.col], [7, 22]);
      assert.match(i.message, /sweep cell distill\.ipc=-3/);
      return true;
    },
  );
});

test('sweep paths that do not exist are refused with a suggestion', () => {
  const root = makeProject({ 'spec.yaml': `${BASE}sweep:\n  axes:\n    distill.icp: [1]\n    eval.models: [1]\n` });
  assert.throws(
    () => resolveSpec(join(root, 'spec.yaml')),
    (err: unknown) =>
      err instanceof SpecError &&
      err.issues.length === 1 &&
      err.issues[0].suggestion === 'distill.ipc' &&
      err.issues[0].line === 7 &&
      err.issues[0].col === 5,
  );
});

test('a sweep past max_cells is refused before expansion', () => {
  const values = Array.from({ length: 200 }, (_, i) => i).join(', ');
  const text = `${BASE}sweep:\n  max_cells: 1000\n  axes:\n    seed: [${values}]\n    distill.ipc: [1, 2, 3, 4, 5, 6]\n`;
  const root = makeProject({ 'spec.yaml': text });
  assert.throws(
    () => resolveSpec(join(root, 'spec.yaml')),
    (err: unknown) => err instanceof SpecError && /1200 cells, more than sweep\.max_cells = 1000/.test(err.issues[0].message),
  );
});

test('sweeping the sweep itself or the name is refused', () => {
  const root = makeProject({ 'spec.yaml': `${BASE}sweep:\n  axes:\n    name: [a, b]\n` });
  assert.throws(() => resolveSpec(join(root, 'spec.yaml')), /'name' cannot be swept/);
});
