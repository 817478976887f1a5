import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { resolveSpec } from '../src/spec/resolve.js';
import { SpecError, formatIssue, type SpecIssue } from '../src/spec/errors.js';
import { makeProject, yaml } from './helpers/project.js';

function issuesOf(files: Record<string, string>, main = 'spec.yaml', sets: string[] = []): { root: string; issues: SpecIssue[] } {
  const root = makeProject(files);
  try {
    resolveSpec(join(root, main), { sets });
  } catch (err) {
    if (err instanceof SpecError) return { root, issues: err.issues };
    throw err;
  }
  return { root, issues: [] };
}

function find(issues: SpecIssue[], path: string): SpecIssue {
  const hit = issues.find((i) => i.path === path);
  assert.ok(hit, `expected an issue at ${path}; got ${JSON.stringify(issues.map((i) => i.path))}`);
  return hit;
}

const GOOD = yaml`
  name: ok
  dataset: {name: mnist}
  distill: {method: random, ipc: 10}
  eval: {architectures: [convnet]}
`;

test('a valid spec gets its defaults filled in', () => {
  const root = makeProject({ 'spec.yaml': GOOD });
  const r = resolveSpec(join(root, 'spec.yaml'));
  assert.equal(r.cells.length, 1);
  assert.equal(r.cells[0].spec.eval.epochs, 300);
  assert.equal(r.cells[0].spec.eval.lr, 0.01);
  assert.equal(r.cells[0].spec.eval.report_epoch, 'final');
  assert.equal(r.cells[0].spec.seed, 0);
});

test('YAML syntax errors carry line and column', () => {
  const { issues } = issuesOf({ 'spec.yaml': 'name: x\ndataset: {name: mnist\ndistill: 1\n' });
  assert.ok(issues.length >= 1);
  assert.match(issues[0].message, /^YAML:/);
  assert.equal(issues[0].line, 3);
});

test('duplicate keys are refused with their position', () => {
  const { issues } = issuesOf({ 'spec.yaml': `${GOOD}name: again\n` });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].line, 5);
  assert.equal(issues[0].col, 1);
  assert.match(issues[0].message, /unique|duplicate/i);
});

test('every schema error is reported at once, each at its own line and column', () => {
  const { issues } = issuesOf({
    'spec.yaml': yaml`
      name: bad
      datset: {name: mnist}
      distill:
        method: randon
        ipc: ten
      eval:
        architectures: [convnet, resnet19, {name: vgg11, widht: 3}]
        epochs: 0
    `,
  });
  const unknown = find(issues, 'datset');
  assert.deepEqual([unknown.line, unknown.col, unknown.suggestion], [2, 1, 'dataset']);
  assert.match(unknown.message, /unknown key 'datset'/);
  const missing = find(issues, 'dataset');
  assert.match(missing.message, /missing required key 'dataset'/);
  const method = find(issues, 'distill.method');
  assert.deepEqual([method.line, method.col, method.suggestion], [4, 11, 'random']);
  const ipc = find(issues, 'distill.ipc');
  assert.deepEqual([ipc.line, ipc.col], [5, 8]);
  assert.match(ipc.message, /expected an integer, got the string 'ten'/);
  const arch = find(issues, 'eval.architectures[1]');
  assert.deepEqual([arch.line, arch.col, arch.suggestion], [7, 28, 'resnet18']);
  const widht = find(issues, 'eval.architectures[2].widht');
  assert.deepEqual([widht.line, widht.col, widht.suggestion], [7, 52, 'width']);
  const epochs = find(issues, 'eval.epochs');
  assert.deepEqual([epochs.line, epochs.col], [8, 11]);
  assert.match(epochs.message, />= 1/);
  assert.equal(issues.length, 7, JSON.stringify(issues, null, 1));
});

test('a mapping where a list is expected names the expected type', () => {
  const { issues } = issuesOf({ 'spec.yaml': GOOD.replace('[convnet]', '{a: 1}') });
  const i = find(issues, 'eval.architectures');
  assert.equal(i.line, 4);
  assert.match(i.message, /expected a list, got a mapping/);
});

test('YAML alias bombs are refused before expansion', () => {
  const bomb = [
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
  ].join('\n');
  const { issues } = issuesOf({ 'spec.yaml': `${GOOD}${bomb}\n` });
  assert.equal(issues.length, 1);
  assert.match(issues[0].message, /alias bomb/);
});

test('extends merges a base protocol; errors point into the file that wrote the value', () => {
  const { issues } = issuesOf({
    'protocols/eval.yaml': yaml`
      eval:
        architectures: [convnet, mlp]
        epochs: -5
    `,
    'spec.yaml': yaml`
      extends: protocols/eval.yaml
      name: child
      dataset: {name: mnist}
      distill: {method: random, ipc: 1}
    `,
  });
  assert.equal(issues.length, 1);
  assert.match(issues[0].file, /protocols\/eval\.yaml$/);
  assert.deepEqual([issues[0].line, issues[0].col], [3, 11]);
});

test('extends: the child overrides the base key by key', () => {
  const root = makeProject({
    'base.yaml': yaml`
      eval: {architectures: [convnet, mlp], epochs: 50, models: 3}
    `,
    'spec.yaml': yaml`
      extends: base.yaml
      name: child
      dataset: {name: mnist}
      distill: {method: random, ipc: 1}
      eval: {epochs: 20}
    `,
  });
  const r = resolveSpec(join(root, 'spec.yaml'));
  assert.equal(r.cells[0].spec.eval.epochs, 20);
  assert.equal(r.cells[0].spec.eval.models, 3);
  assert.deepEqual(r.cells[0].spec.eval.architectures, ['convnet', 'mlp']);
});

test('bad extends: missing file, cycle, and escaping the project are errors at the extends line', () => {
  const missing = issuesOf({ 'spec.yaml': `extends: nope.yaml\n${GOOD}` }).issues;
  assert.equal(missing.length, 1);
  assert.deepEqual([missing[0].line, missing[0].col], [1, 10]);
  assert.match(missing[0].message, /not found/);

  const cycle = issuesOf({ 'a.yaml': 'extends: spec.yaml\n', 'spec.yaml': `extends: a.yaml\n${GOOD}` }).issues;
  assert.equal(cycle.length, 1);
  assert.match(cycle[0].message, /extends cycle: spec\.yaml -> a\.yaml -> spec\.yaml/);

  const escape = issuesOf({ 'spec.yaml': `extends: ../../etc/passwd\n${GOOD}` }).issues;
  assert.equal(escape.length, 1);
  assert.match(escape[0].message, /outside the project root/);
});

test('--set overrides parse YAML values and errors name the command line', () => {
  const root = makeProject({ 'spec.yaml': GOOD });
  const r = resolveSpec(join(root, 'spec.yaml'), { sets: ['distill.ipc=5', 'eval.architectures=[mlp, lenet]'] });
  assert.equal(r.cells[0].spec.distill.ipc, 5);
  assert.deepEqual(r.cells[0].spec.eval.architectures, ['mlp', 'lenet']);
  const { issues } = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['distill.ipcc=3']);
  assert.equal(issues.length, 1);
  assert.match(issues[0].file, /--set distill\.ipcc=3/);
  assert.equal(issues[0].suggestion, 'ipc');
});

test('a list given where one value belongs points to sweep.axes, in the form it was written', () => {
  const onLine = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['seed=[0, 1]']).issues;
  assert.equal(onLine.length, 1);
  assert.match(onLine[0].message, /expected an integer, got a list/);
  assert.equal(onLine[0].hint, "to run one cell per value, sweep it: --set 'sweep.axes.seed=[0, 1]'");
  assert.match(formatIssue(onLine[0]), /got a list; to run one cell per value/);
  const inFile = issuesOf({ 'spec.yaml': GOOD.replace('ipc: 10', 'ipc: [1, 10]') }).issues;
  assert.equal(inFile.length, 1);
  assert.equal(inFile[0].path, 'distill.ipc');
  assert.equal(inFile[0].hint, 'to run one cell per value, sweep it: sweep: {axes: {distill.ipc: [1, 10]}}');
  // A sweep that then gives the value is accepted, so the hint leads somewhere valid.
  const root = makeProject({ 'spec.yaml': `${GOOD}sweep: {axes: {distill.ipc: [1, 10]}}\n` });
  assert.deepEqual(resolveSpec(join(root, 'spec.yaml')).cells.map((c) => c.spec.distill.ipc), [1, 10]);
  // Both command-line hints work for a dotted axis too: what follows sweep.axes. is the axis's name.
  const plain = makeProject({ 'spec.yaml': GOOD });
  const suggested = (issue: { hint?: string }): string => /--set '(.*)'$/.exec(issue.hint ?? '')?.[1] ?? '';
  const dotted = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['distill.ipc=[1, 10]']).issues;
  assert.equal(dotted[0].hint, "to run one cell per value, sweep it: --set 'sweep.axes.distill.ipc=[1, 10]'");
  assert.deepEqual(resolveSpec(join(plain, 'spec.yaml'), { sets: [suggested(dotted[0])] }).cells.map((c) => c.spec.distill.ipc), [1, 10]);
  const dottedAxis = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['sweep.axes.distill.ipc=5']).issues;
  assert.equal(dottedAxis.length, 1);
  assert.equal(dottedAxis[0].path, 'sweep.axes.distill.ipc');
  assert.equal(dottedAxis[0].hint, "an axis lists its values, even a single one: --set 'sweep.axes.distill.ipc=[5]'");
  assert.deepEqual(resolveSpec(join(plain, 'spec.yaml'), { sets: [suggested(dottedAxis[0])] }).cells.map((c) => c.spec.distill.ipc), [5]);
  // A comma inside a string value stays inside that value.
  const quoted = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['description=[a, "b,c"]']).issues;
  assert.equal(quoted.length, 1);
  assert.equal(quoted[0].hint, `to run one cell per value, sweep it: --set 'sweep.axes.description=["a", "b,c"]'`);
  // An axis given one value instead of a list of them.
  const axis = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['sweep.axes.seed=3']).issues;
  assert.equal(axis.length, 1);
  assert.equal(axis[0].hint, "an axis lists its values, even a single one: --set 'sweep.axes.seed=[3]'");
  const axisInFile = issuesOf({ 'spec.yaml': `${GOOD}sweep: {axes: {distill.method: dm}}\n` }).issues;
  assert.equal(axisInFile.length, 1);
  assert.equal(axisInFile[0].hint, 'an axis lists its values, even a single one: distill.method: ["dm"]');
  // Not for a key no sweep may vary (the sweep refuses it), nor for a list where a mapping or a list
  // item is expected, nor for a wrong scalar.
  const named = issuesOf({ 'spec.yaml': GOOD }, 'spec.yaml', ['name=[a, b]']).issues;
  assert.equal(named.length, 1);
  assert.equal(named[0].hint, undefined, formatIssue(named[0]));
  const other = issuesOf({ 'spec.yaml': GOOD.replace('{name: mnist}', '[mnist]').replace('ipc: 10', "ipc: 'ten'") }).issues;
  assert.ok(other.length >= 2);
  for (const issue of other) assert.equal(issue.hint, undefined, formatIssue(issue));
});

test('user dataset paths must exist and stay inside data_root', () => {
  const base = GOOD.replace('{name: mnist}', '{name: cifar10, path: PATH}');
  const missing = issuesOf({ 'spec.yaml': base.replace('PATH', 'data/cifar') }).issues;
  assert.equal(missing.length, 1);
  assert.equal(missing[0].path, 'dataset.path');
  assert.match(missing[0].message, /does not exist/);
  assert.match(missing[0].hint ?? '', /--set data_root=<folder>/);
  assert.equal(missing[0].line, 2);
  const escape = issuesOf({ 'spec.yaml': base.replace('PATH', '../../outside') }).issues;
  assert.match(escape[0].message, /outside data_root/);
  const nopath = issuesOf({ 'spec.yaml': GOOD.replace('{name: mnist}', '{name: cifar10}') }).issues;
  assert.match(nopath[0].message, /set dataset\.path/);
});

test('IPC larger than the smallest class is a semantic error at distill.ipc', () => {
  const root = makeProject({ 'spec.yaml': GOOD.replace('ipc: 10', 'ipc: 50') });
  assert.throws(
    () => resolveSpec(join(root, 'spec.yaml'), { describeDataset: () => ({ classes: 10, minPerClass: 20 }) }),
    (err: unknown) => err instanceof SpecError && err.issues[0].path === 'distill.ipc' && err.issues[0].line === 3 && /20 training images/.test(err.issues[0].message),
  );
});

test('a store path that escapes the project is refused', () => {
  const { issues } = issuesOf({ 'spec.yaml': `${GOOD}store: ../elsewhere\n` });
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, 'store');
});

test("an architecture option the zoo does not let a spec change is refused at validation, at its line and column", () => {
  const spec = GOOD.replace('architectures: [convnet]', 'architectures: [convnet, {name: alexnet, width: 32}]').replace(
    'distill: {method: random, ipc: 10}',
    'distill: {method: random, ipc: 10, dm: {arch: {name: lenet, norm: batch}}}',
  );
  const { issues } = issuesOf({ 'spec.yaml': spec });
  const alex = find(issues, 'eval.architectures.1');
  assert.match(alex.message, /alexnet: option 'width' is fixed to 128 \(configurable: act, head\)/);
  assert.deepEqual([alex.line, alex.col], [4, 33], "the position of `{name: alexnet` in `eval: {architectures: [convnet, {name: alexnet, width: 32}]}`");
  assert.match(find(issues, 'distill.dm.arch').message, /lenet: option 'norm' is fixed to none/);
  assert.equal(issues.length, 2);
  // The same options where the zoo allows them are fine.
  assert.deepEqual(issuesOf({ 'spec.yaml': spec.replace('{name: alexnet, width: 32}', '{name: vgg11, width: 16}').replace('norm: batch', 'act: tanh') }).issues, []);
});

test('micro_batch must split the batch and is refused with batch norm, each at its own line', () => {
  const spec = (evalBlock: string, metadd = ''): string => GOOD.replace('eval: {architectures: [convnet]}', evalBlock) + metadd;
  assert.deepEqual(issuesOf({ 'spec.yaml': spec('eval: {architectures: [convnet, resnet50], micro_batch: 32}') }).issues, []);
  const same = issuesOf({ 'spec.yaml': spec('eval: {architectures: [convnet], batch: 64, micro_batch: 64}') }).issues;
  assert.equal(same.length, 1);
  assert.equal(same[0].path, 'eval.micro_batch');
  assert.match(same[0].message, /does not split the batch of 64/);
  const bn = issuesOf({ 'spec.yaml': spec('eval: {architectures: [convnet, {name: resnet18, norm: batch}], micro_batch: 32}') }).issues;
  assert.equal(bn.length, 1);
  assert.match(bn[0].message, /resnet18 has batch norm/);
  assert.equal(bn[0].line, 4);
  const aux = issuesOf({
    'spec.yaml': spec('eval: {architectures: [convnet]}', 'metadd: {arm: metadd, aux: [{name: vgg11, norm: batch}], pretrain: {micro_batch: 16}}\n').replace('method: random', 'method: dm'),
  }).issues;
  assert.deepEqual(aux.map((i) => i.path), ['metadd.pretrain.micro_batch']);
});

test('dataset.zca is refused with the methods that clamp to the range of unwhitened pixels', () => {
  const spec = GOOD.replace('{name: mnist}', '{name: mnist, zca: {eps: 0.1}}');
  assert.deepEqual(issuesOf({ 'spec.yaml': spec.replace('method: random', 'method: dm') }).issues, []);
  const sre2l = issuesOf({ 'spec.yaml': spec.replace('method: random', 'method: sre2l') }).issues;
  assert.deepEqual(sre2l.map((i) => [i.path, i.line]), [['dataset.zca', 2]]);
  const clip = issuesOf({ 'spec.yaml': spec.replace('{method: random, ipc: 10}', '{method: mtt, ipc: 10, mtt: {clip_pixels: true}}') }).issues;
  assert.deepEqual(clip.map((i) => i.path), ['distill.mtt.clip_pixels']);
});
