import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { resolveSpec } from '../src/spec/resolve.js';
import { compileDag, type Dag, type StageNode } from '../src/dag/compile.js';
import { repeatedCells } from '../src/dag/repeats.js';
import { describeSpentRefines, spentRefineSchedules } from '../src/dag/spent-schedule.js';
import { renderPlan } from '../src/cli/render.js';
import { planSpec } from '../src/exec/plan-spec.js';
import { makeProject, yaml } from './helpers/project.js';

const SPEC = yaml`
  name: sre2l-dag
  dataset: {name: mnist}
  distill: {method: sre2l, ipc: 1}
  eval: {architectures: [convnet, mlp], epochs: 10}
  sweep:
    axes:
      distill.ipc: [1, 10]
      seed: [0, 1]
`;

function compile(text: string, sets: string[] = []): Dag {
  const root = makeProject({ 'spec.yaml': text });
  const resolved = resolveSpec(join(root, 'spec.yaml'), { sets });
  return compileDag(resolved, { backend: 'wasm', datasetDigest: () => 'digest-of-mnist' });
}

function nodes(dag: Dag, kind: string): StageNode[] {
  return dag.order.map((k) => dag.nodes.get(k)).filter((n): n is StageNode => n?.kind === kind);
}

test('SRe2L cells share one teacher pretrain stage; its distill and eval stages read it', () => {
  const dag = compile(SPEC);
  const teachers = nodes(dag, 'pretrain');
  assert.equal(teachers.length, 1, 'one teacher for four cells with the same teacher protocol');
  const teacher = teachers[0];
  assert.deepEqual(teacher.cells, [0, 1, 2, 3]);
  assert.deepEqual(teacher.params.arch, { name: 'convnet', norm: 'batch' });
  assert.equal(teacher.params.epochs, 20);
  assert.equal(teacher.params.snapshots, false);
  const distills = nodes(dag, 'distill');
  assert.equal(distills.length, 4);
  for (const d of distills) {
    assert.equal(d.inputs.teacher, teacher.key);
    assert.equal(d.params.method, 'sre2l');
    assert.equal(d.params.lr_img, 0.25);
    assert.equal(d.params.r_bn, 0.01);
    assert.equal(d.params.first_bn_multiplier, 10);
    assert.equal(d.params.temperature, undefined, 'the relabel temperature is not a recover parameter');
  }
  const evals = nodes(dag, 'eval');
  assert.equal(evals.length, 8);
  for (const e of evals) {
    assert.equal(e.inputs.teacher, teacher.key);
    assert.deepEqual(e.params.kd, { temperature: 30 });
  }
  // The teacher is computed before every stage that reads it.
  const pos = new Map(dag.order.map((k, i) => [k, i]));
  for (const n of [...distills, ...evals]) assert.ok((pos.get(teacher.key) ?? Infinity) < (pos.get(n.key) ?? -1));
});

test('the temperature changes only the SRe2L evals; the teacher protocol changes teacher, distill and evals; hard-label evals have no teacher', () => {
  const base = compile(SPEC);
  const hot = compile(SPEC, ['distill.sre2l.temperature=4']);
  const keys = (d: Dag, kind: string): string[] => nodes(d, kind).map((n) => n.key);
  assert.deepEqual(keys(hot, 'pretrain'), keys(base, 'pretrain'));
  assert.deepEqual(keys(hot, 'distill'), keys(base, 'distill'));
  assert.equal(keys(hot, 'eval').filter((k) => keys(base, 'eval').includes(k)).length, 0);
  assert.deepEqual(nodes(hot, 'eval')[0].params.kd, { temperature: 4 });

  const longer = compile(SPEC, ['distill.sre2l.teacher.epochs=5']);
  assert.notDeepEqual(keys(longer, 'pretrain'), keys(base, 'pretrain'));
  assert.equal(keys(longer, 'distill').filter((k) => keys(base, 'distill').includes(k)).length, 0);
  assert.equal(keys(longer, 'eval').filter((k) => keys(base, 'eval').includes(k)).length, 0);

  const random = compile(SPEC.replace('method: sre2l', 'method: random'));
  assert.equal(nodes(random, 'pretrain').length, 0);
  for (const e of nodes(random, 'eval')) {
    assert.equal(e.inputs.teacher, undefined);
    assert.equal(e.params.kd, undefined);
  }
});

test('a teacher without batch norm is refused at planning time, naming the field', () => {
  const spec = SPEC.replace('method: sre2l, ipc: 1', 'method: sre2l, ipc: 1, sre2l: {teacher: {arch: {name: convnet, norm: instance}}}');
  assert.throws(() => compile(spec), /distill\.sre2l\.teacher\.arch.*norm: batch/);
  // The same spelling with batch norm plans (the test above is not refusing every explicit arch).
  assert.equal(nodes(compile(spec.replace('norm: instance', 'norm: batch')), 'pretrain').length, 1);
});

/** The random subset and SRe2L crossed with an SRe2L-only axis: the random cells repeat each other. */
const MIXED = yaml`
  name: sre2l-vs-random
  dataset: {name: mnist}
  distill: {method: sre2l, ipc: 1}
  eval: {architectures: [convnet], epochs: 10}
  sweep:
    axes:
      distill.method: [random, sre2l]
      distill.sre2l.init: [noise, real]
`;

test("report facts: another method's settings are null in a cell (a random row shows no SRe2L init), the cell's own are kept", () => {
  const spec = MIXED.replace(
    'distill.sre2l.init: [noise, real]\n',
    'distill.sre2l.init: [noise, real]\n    distill.sre2l.iterations: [0, 1000]\n  exclude:\n    - {distill.method: random, distill.sre2l.init: real}\n',
  );
  assert.notEqual(spec, MIXED);
  const dag = compile(`${spec}report: {rows: [distill.method, distill.sre2l.init]}\n`);
  const reportNode = dag.nodes.get(dag.reportKey);
  const report = reportNode?.params as unknown as { cells: { coords: Record<string, unknown>; facts: Record<string, unknown>; set: string; evals: { input: string }[] }[] };
  assert.equal(report.cells.length, 6);
  // The two random cells (0 and 1000 SRe2L steps) are the same stages: one set and one eval input.
  const randoms = report.cells.filter((c) => c.coords['distill.method'] === 'random');
  assert.equal(randoms.length, 2);
  assert.equal(randoms[0].set, randoms[1].set);
  assert.deepEqual(randoms[0].evals, randoms[1].evals);
  const inputKeys = Object.values(reportNode?.inputs ?? {});
  assert.equal(new Set(inputKeys).size, inputKeys.length, 'one input name per artifact');
  assert.equal(inputKeys.length, 5 + 5, '5 distinct sets, 5 distinct evals');
  // `metadd plan` names the axis that did not vary them.
  assert.deepEqual(repeatedCells(dag), { count: 1, paths: ['distill.sre2l.iterations'] });
  assert.deepEqual(repeatedCells(compile(SPEC)), { count: 0, paths: [] });
  for (const c of report.cells) {
    const own = c.coords['distill.method'] === 'sre2l';
    // A declared row path and a swept path the rows leave out (the report appends it) alike.
    for (const path of ['distill.sre2l.init', 'distill.sre2l.iterations']) {
      assert.ok(Object.hasOwn(c.facts, path), path);
      assert.equal(c.facts[path], own ? c.coords[path] : null, `${String(c.coords['distill.method'])}: ${path}`);
    }
    assert.equal(c.facts['distill.method'], c.coords['distill.method']);
  }
});

test('report facts: a path only an include row sets holds the value every other cell ran with (not a blank)', () => {
  const spec = MIXED.replace(
    'distill.sre2l.init: [noise, real]\n',
    'distill.sre2l.init: [noise]\n  include:\n    - {distill.method: sre2l, distill.sre2l.init: noise, distill.sre2l.iterations: 7}\n',
  );
  assert.notEqual(spec, MIXED);
  const dag = compile(spec.replace('distill: {method: sre2l, ipc: 1}', 'distill: {method: sre2l, ipc: 1, sre2l: {iterations: 3}}'));
  const report = dag.nodes.get(dag.reportKey)?.params as unknown as { cells: { coords: Record<string, unknown>; facts: Record<string, unknown> }[] };
  const seen = report.cells.map((c) => [c.coords['distill.method'], c.coords['distill.sre2l.iterations'] ?? 'unset', c.facts['distill.sre2l.iterations']]);
  // The axis cells never name the path; their facts hold the spec's value (3), the random cell's null.
  assert.deepEqual(seen, [
    ['random', 'unset', null],
    ['sre2l', 'unset', 3],
    ['sre2l', 7, 7],
  ]);
  // A path every cell sets, or none, adds nothing to the facts of a spec without include rows.
  const plainDag = compile(MIXED);
  const plain = plainDag.nodes.get(plainDag.reportKey)?.params as unknown as { cells: { facts: Record<string, unknown> }[] };
  for (const c of plain.cells) assert.ok(!Object.hasOwn(c.facts, 'distill.sre2l.iterations'));
});

test('`metadd plan` notes cells that repeat the stages of others, and names the axis', async () => {
  const text = MIXED;
  const root = makeProject({ 'spec.yaml': text });
  const out = (await renderPlan(planSpec(join(root, 'spec.yaml'), { backend: 'wasm' }), false)).split('\n');
  assert.match(out[0], /^spec sre2l-vs-random: 4 cell\(s\)/);
  assert.match(out[1], /^note: 1 cell\(s\) repeat the stages of another cell: they differ only in distill\.sre2l\.init, which their method does not read/);
  const clean = makeProject({ 'spec.yaml': text.replace('distill.sre2l.init: [noise, real]', 'distill.ipc: [1, 10]') });
  assert.equal((await renderPlan(planSpec(join(clean, 'spec.yaml'), { backend: 'wasm' }), false)).split('\n')[1], '', 'no note without repeats');
});

test('plan notes refine stages whose base has spent its cosine schedule (SRe2L with K small against T), not joint or long refines', async () => {
  const spec = `${SPEC}metadd: {aux: [convnet], iterations: 40}\n`.replace('seed: [0, 1]', 'seed: [0, 1]\n    metadd.arm: [none, control, metadd]');
  const dag = compile(spec);
  const spent = spentRefineSchedules(dag);
  // T = 1000 (SRe2L's default) continued over T + K = 1040: the first refine step's share of the initial lr.
  const first = 0.5 * (1 + Math.cos((Math.PI * 1000) / 1040));
  assert.equal(spent.length, 1);
  assert.deepEqual({ ...spent[0], firstLrFraction: undefined }, { method: 'sre2l', base: 1000, refine: 40, stages: nodes(dag, 'metadd').length, firstLrFraction: undefined });
  assert.equal(spent[0].stages, 8, '2 IPCs x 2 seeds x (control, metadd)');
  assert.ok(Math.abs(spent[0].firstLrFraction - first) < 1e-12 && first < 0.004);
  assert.match(describeSpentRefines(spent)[0], /^note: 8 metadd stage\(s\) refine sre2l sets .* T \+ K = 1000 \+ 40 steps, the K refine steps run at 0\.36% of the initial pixel lr .*metadd\.mode: joint/);

  assert.deepEqual(spentRefineSchedules(compile(spec, ['metadd.mode=joint'])), [], "joint mode: the base's own budget over its own schedule");
  assert.deepEqual(spentRefineSchedules(compile(spec, ['metadd.iterations=1000'])), [], 'K = T: the refine steps start at half the lr');
  assert.deepEqual(spentRefineSchedules(compile(spec, ['distill.sre2l.schedule=constant'])), [], 'no decay, nothing spent');
  assert.deepEqual(spentRefineSchedules(compile(spec.replace('method: sre2l', 'method: dm'))), [], 'SGD bases have no schedule');

  const root = makeProject({ 'spec.yaml': spec });
  const text = await renderPlan(planSpec(join(root, 'spec.yaml')), false);
  assert.match(text.split('\n')[1], /^note: 8 metadd stage\(s\) refine sre2l sets/);
  const json = JSON.parse(await renderPlan(planSpec(join(root, 'spec.yaml')), true)) as { spent_refines: unknown[] };
  assert.equal(json.spent_refines.length, 1);
});
