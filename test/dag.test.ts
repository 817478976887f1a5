import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolveSpec, type Cell } from '../src/spec/resolve.js';
import { compileDag, type Dag } from '../src/dag/compile.js';
import { SpecError } from '../src/spec/errors.js';
import { disambiguateLabels } from '../src/dag/labels.js';
import type { Json } from '../src/spec/paths.js';
import { makeProject, yaml } from './helpers/project.js';

const SPEC = yaml`
  name: dag
  dataset: {name: mnist}
  distill: {method: random, ipc: 1}
  eval: {architectures: [convnet, mlp], epochs: 10}
  sweep:
    axes:
      distill.ipc: [1, 10]
      seed: [0, 1]
`;

function compile(text: string, sets: string[] = [], backend = 'wasm'): Dag {
  const root = makeProject({ 'spec.yaml': text });
  const resolved = resolveSpec(join(root, 'spec.yaml'), { sets });
  return compileDag(resolved, { backend, datasetDigest: () => 'digest-of-mnist' });
}

function keysByKind(dag: Dag): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const key of dag.order) {
    const n = dag.nodes.get(key);
    if (n) (out[n.kind] ??= []).push(key);
  }
  return out;
}

test('cells share the stages they have in common', () => {
  const dag = compile(SPEC);
  const k = keysByKind(dag);
  assert.equal(k.dataset.length, 1, 'one dataset stage for four cells');
  assert.equal(k.distill.length, 4);
  assert.equal(k.eval.length, 8);
  assert.equal(k.report.length, 1);
  assert.deepEqual(dag.nodes.get(k.dataset[0])?.cells, [0, 1, 2, 3]);
  // Inputs come before the stages that read them.
  const pos = new Map(dag.order.map((key, i) => [key, i]));
  for (const key of dag.order) {
    for (const up of Object.values(dag.nodes.get(key)?.inputs ?? {})) assert.ok((pos.get(up) ?? Infinity) < (pos.get(key) ?? -1));
  }
});

test('keys do not depend on how a spec spells a default', () => {
  const a = compile(SPEC);
  const b = compile(SPEC.replace('architectures: [convnet, mlp]', 'architectures: [{name: convnet, width: 128}, mlp]').replace('epochs: 10', 'epochs: 10, lr: 0.01'));
  assert.deepEqual(a.order, b.order);
  const c = compile(SPEC.replace('epochs: 10', 'epochs: 10, micro_batch: null'));
  assert.deepEqual(a.order, c.order);
});

test('eval.micro_batch enters the evaluation stages only, and only when set', () => {
  const base = compile(SPEC);
  const evalParams = [...base.nodes.values()].filter((n) => n.kind === 'eval').map((n) => n.params);
  assert.ok(evalParams.every((p) => !('micro_batch' in p)), 'unset: absent, so stages keep the keys they had before the option existed');
  const chunked = compile(SPEC, ['eval.micro_batch=64']);
  const a = keysByKind(base);
  const b = keysByKind(chunked);
  assert.deepEqual(b.distill, a.distill);
  assert.equal(b.eval.filter((k) => a.eval.includes(k)).length, 0);
  for (const n of chunked.nodes.values()) if (n.kind === 'eval') assert.equal(n.params.micro_batch, 64);
  const aligned = SPEC.replace('method: random', 'method: dm').replace('sweep:', 'metadd: {arm: metadd, aux: [convnet, lenet]}\nsweep:');
  const pretrain = (d: Dag) => [...d.nodes.values()].filter((n) => n.kind === 'pretrain').map((n) => n.params);
  assert.ok(pretrain(compile(aligned)).every((p) => !('micro_batch' in p)));
  const auxChunked = pretrain(compile(aligned, ['metadd.pretrain.micro_batch=16']));
  assert.equal(auxChunked.length, 2);
  for (const p of auxChunked) assert.equal(p.micro_batch, 16);
});

test('dataset.zca: absent from the dataset stage unless set; when set, a tensor stage keyed by backend', () => {
  const plainNode = (d: Dag) => [...d.nodes.values()].find((n) => n.kind === 'dataset');
  const plain = plainNode(compile(SPEC));
  assert.ok(plain && !('zca' in plain.params) && !plain.needsTensors);
  assert.deepEqual(plainNode(compile(SPEC, ['dataset.zca=null']))?.key, plain.key);
  const white = plainNode(compile(SPEC, ['dataset.zca={eps: 0.1}']));
  assert.deepEqual(white?.params.zca, { eps: 0.1 });
  assert.equal(white?.needsTensors, true);
  assert.notEqual(plainNode(compile(SPEC, ['dataset.zca={eps: 0.1}'], 'cpu'))?.key, white?.key, 'float32 products differ by backend');
});

test('changing one parameter invalidates exactly the stages downstream of it', () => {
  const base = keysByKind(compile(SPEC));
  const epochs = keysByKind(compile(SPEC, ['eval.epochs=11']));
  assert.deepEqual(epochs.dataset, base.dataset);
  assert.deepEqual(epochs.distill, base.distill);
  assert.equal(epochs.eval.filter((k) => base.eval.includes(k)).length, 0);
  assert.notDeepEqual(epochs.report, base.report);

  const limit = keysByKind(compile(SPEC, ['dataset.train_limit=100']));
  assert.notDeepEqual(limit.dataset, base.dataset);
  assert.equal(limit.distill.filter((k) => base.distill.includes(k)).length, 0);

  // Widening the sweep keeps every existing stage and adds the new ones.
  const wider = keysByKind(compile(SPEC.replace('seed: [0, 1]', 'seed: [0, 1, 2]')));
  for (const k of base.distill) assert.ok(wider.distill.includes(k));
  for (const k of base.eval) assert.ok(wider.eval.includes(k));
  assert.equal(wider.distill.length, 6);
});

test('tensor stages are keyed by backend; tensor-free ones are shared across backends', () => {
  const wasm = keysByKind(compile(SPEC, [], 'wasm'));
  const cpu = keysByKind(compile(SPEC, [], 'cpu'));
  assert.deepEqual(cpu.dataset, wasm.dataset);
  assert.deepEqual(cpu.distill, wasm.distill, 'random subsets use no tensors');
  assert.equal(cpu.eval.filter((k) => wasm.eval.includes(k)).length, 0);
});

test('seeds do not depend on the backend', () => {
  const wasm = compile(SPEC, [], 'wasm');
  const cpu = compile(SPEC, [], 'cpu');
  const seeds = (d: Dag) => d.order.map((k) => d.nodes.get(k)?.seedKey);
  assert.deepEqual(seeds(wasm), seeds(cpu));
});

test('keys are stable across processes', () => {
  const root = makeProject({ 'spec.yaml': SPEC });
  const here = compileDag(resolveSpec(join(root, 'spec.yaml')), { backend: 'wasm', datasetDigest: () => 'digest-of-mnist' }).order;
  const modDir = fileURLToPath(new URL('../src/', import.meta.url));
  const script = `
    const { resolveSpec } = await import(${JSON.stringify(join(modDir, 'spec/resolve.js'))});
    const { compileDag } = await import(${JSON.stringify(join(modDir, 'dag/compile.js'))});
    const r = resolveSpec(${JSON.stringify(join(root, 'spec.yaml'))});
    console.log(JSON.stringify(compileDag(r, { backend: 'wasm', datasetDigest: () => 'digest-of-mnist' }).order));`;
  const there = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
  assert.deepEqual(there, here);
});

test('a report section that cannot be laid out is a spec error at its line, not a crash', () => {
  const bad = `${SPEC}report:\n  tables:\n    - name: main\n      effect: {pairs: [[metadd, control], [none, none]]}\n    - name: main\n`;
  assert.throws(
    () => compile(bad),
    (err: unknown) =>
      err instanceof SpecError &&
      err.issues.length === 1 &&
      err.issues[0].path === 'report.tables[0].effect.pairs[1]' &&
      err.issues[0].line === 12 &&
      /effect pair \[none, none\] compares an arm with itself; e\.g\. \[metadd, control\]/.test(err.issues[0].message),
  );
  const dup = `${SPEC}report:\n  tables:\n    - name: main\n    - name: main\n`;
  assert.throws(() => compile(dup), (err: unknown) => err instanceof SpecError && err.issues[0].path === 'report.tables[1].name' && err.issues[0].line === 12 && /two tables are named 'main'/.test(err.issues[0].message));
});

test('stages that share a label are told apart by the swept values they differ in, and only they', () => {
  const spec = `${SPEC}    eval.epochs: [10, 20]\n  include:\n    - {distill.ipc: 1, seed: 0, eval.epochs: 30, eval.lr: 0.02}\n`;
  const dag = compile(spec);
  const labels = [...dag.nodes.values()].map((n) => n.label);
  assert.equal(new Set(labels).size, labels.length, `labels repeat: ${labels.join('; ')}`);
  const evals = labels.filter((l) => l.startsWith('eval convnet <- random ipc=1 seed=0'));
  // The include cell's learning rate is told; the two swept cells show the default they ran with.
  assert.deepEqual(evals.sort(), [
    'eval convnet <- random ipc=1 seed=0 eval.epochs=10 eval.lr=0.01',
    'eval convnet <- random ipc=1 seed=0 eval.epochs=20 eval.lr=0.01',
    'eval convnet <- random ipc=1 seed=0 eval.epochs=30 eval.lr=0.02',
  ]);
  // A stage the cells share (the set does not depend on the evaluation) keeps its plain label.
  assert.ok(labels.includes('distill random ipc=1 seed=0'));
  // Without repeated labels nothing changes.
  assert.ok([...compile(SPEC).nodes.values()].every((n) => !/ eval\.|#/.test(n.label)));
});

test('labels no swept value separates get a key prefix; object values print in flow style', () => {
  const cell = (index: number, coords: Record<string, Json>): Cell => ({ index, coords, spec: { metadd: { relative_weights: coords['metadd.relative_weights'] } } as unknown as Cell['spec'] });
  const cells = [cell(0, { 'metadd.relative_weights': { var: 0, ai: 0.2 } }), cell(1, { 'metadd.relative_weights': { ai: 0, var: 0.2 } })];
  const nodes = [
    { key: 'aaaaaaaaaaaa', label: 'metadd x', cells: [0] },
    { key: 'bbbbbbbbbbbb', label: 'metadd x', cells: [1] },
    { key: 'cccccccccccc', label: 'pretrain y', cells: [0, 1] },
    { key: 'dddddddddddd', label: 'pretrain y', cells: [0, 1] },
  ];
  disambiguateLabels(nodes, cells);
  assert.deepEqual(nodes.map((n) => n.label), ['metadd x metadd.relative_weights={ai:0.2,var:0}', 'metadd x metadd.relative_weights={ai:0,var:0.2}', 'pretrain y #cccccccc', 'pretrain y #dddddddd']);
});
