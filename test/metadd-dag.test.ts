import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compileDag, type Dag } from '../src/dag/compile.js';
import { resolveSpec } from '../src/spec/resolve.js';
import { SpecError } from '../src/spec/errors.js';
import type { MetaddParams } from '../src/stages/metadd.js';
import type { ReportParams } from '../src/stages/report.js';
import { makeProject, yaml } from './helpers/project.js';

const SPEC = yaml`
  name: md
  dataset: {name: mnist}
  distill: {method: dm, ipc: 10, dm: {iterations: 50}}
  metadd: {aux: [convnet, resnet18], iterations: 20, pretrain: {epochs: 2}}
  eval: {architectures: [convnet, resnet18], epochs: 10}
  sweep:
    axes:
      metadd.arm: [none, control, metadd]
      seed: [0, 1]
`;

function compile(text: string, sets: string[] = []): Dag {
  const root = makeProject({ 'spec.yaml': text });
  return compileDag(resolveSpec(join(root, 'spec.yaml'), { sets }), { backend: 'wasm', datasetDigest: () => 'digest' });
}

function byKind(dag: Dag, kind: string) {
  return dag.order.map((k) => dag.nodes.get(k)).filter((n) => n?.kind === kind) as NonNullable<ReturnType<Dag['nodes']['get']>>[];
}

describe('MetaDD in the DAG', () => {
  it('adds shared aux pretrain stages and one metadd stage per arm cell; evals read the final set', () => {
    const dag = compile(SPEC);
    const distill = byKind(dag, 'distill');
    const pretrain = byKind(dag, 'pretrain');
    const metadd = byKind(dag, 'metadd');
    assert.equal(distill.length, 2, 'arms share the base run of their seed');
    assert.equal(pretrain.length, 2, 'one per auxiliary architecture, shared by every cell and seed');
    assert.equal(metadd.length, 4, '(control, metadd) x 2 seeds');
    assert.equal(byKind(dag, 'eval').length, 12);
    for (const p of pretrain) {
      assert.equal((p.params.arch as { head: string }).head, 'gap');
      assert.equal(p.params.epochs, 2);
      assert.deepEqual(p.inputs, { dataset: dag.cells[0].datasetKey });
    }
    // ResNet-18 in the zoo's own spelling (the planner's depth 18 / avg pool would not build).
    assert.deepEqual(pretrain[1].params.arch, { name: 'resnet18', head: 'gap' });
    for (const c of dag.cells) {
      const arm = c.cell.spec.metadd.arm;
      if (arm === 'none') {
        assert.equal(c.setKey, c.distillKey);
        assert.equal(c.metaddKey, undefined);
        continue;
      }
      const node = dag.nodes.get(c.setKey);
      assert.equal(node?.kind, 'metadd');
      assert.deepEqual(node?.inputs, { dataset: c.datasetKey, images: c.distillKey, aux0: pretrain[0].key, aux1: pretrain[1].key });
      const p = node?.params as unknown as MetaddParams;
      assert.equal(p.arm, arm);
      assert.equal(p.iterations, 20);
      assert.equal(p.image_lr, 1, "DM's reference image lr");
      assert.equal(p.momentum, 0.5);
      assert.equal(p.base.method, 'dm');
      assert.equal(p.base.iterations, 50);
      if (arm === 'control') assert.deepEqual([p.lambda_ai, p.lambda_var], [0, 0]);
      for (const e of c.evals) assert.equal(dag.nodes.get(e.key)?.inputs.images, c.setKey);
    }
  });

  it('reports get a row per arm, and every cell records its arm', () => {
    const dag = compile(SPEC);
    const report = dag.nodes.get(dag.reportKey)?.params as unknown as ReportParams;
    assert.deepEqual(report.report.rows, ['distill.method', 'distill.ipc', 'metadd.arm']);
    assert.deepEqual(new Set(report.cells.map((c) => c.facts['metadd.arm'])), new Set(['none', 'control', 'metadd']));
    // Rows the spec chooses are kept as written; the arm is still among the facts.
    const chosen = compile(`${SPEC}report: {rows: [distill.method]}\n`);
    const r2 = chosen.nodes.get(chosen.reportKey)?.params as unknown as ReportParams;
    assert.deepEqual(r2.report.rows, ['distill.method']);
    assert.ok(r2.cells.every((c) => 'metadd.arm' in c.facts));
    // Without MetaDD, the report is what it was.
    const plain = compile(SPEC.replace('metadd.arm: [none, control, metadd]', 'metadd.arm: [none]'));
    assert.equal(byKind(plain, 'metadd').length + byKind(plain, 'pretrain').length, 0);
    assert.deepEqual((plain.nodes.get(plain.reportKey)?.params as unknown as ReportParams).report, {});
  });

  it('report facts leave out what an arm never reads: every MetaDD setting of the base set, the weights of the control arm', () => {
    const rows = 'report: {rows: [metadd.arm, metadd.lambda_ai, metadd.relative_weights.ai, metadd.tau, metadd.iterations]}\n';
    const dag = compile(`${SPEC}${rows}`, ['metadd.lambda_ai=3']);
    const facts = (dag.nodes.get(dag.reportKey)?.params as unknown as ReportParams).cells.map((c) => c.facts);
    const of = (arm: string): Record<string, unknown> => facts.find((f) => f['metadd.arm'] === arm) ?? {};
    const keys = ['metadd.lambda_ai', 'metadd.relative_weights.ai', 'metadd.tau', 'metadd.iterations'];
    const pick = (f: Record<string, unknown>): unknown[] => keys.map((k) => f[k]);
    assert.deepEqual(pick(of('none')), [null, null, null, null]);
    assert.deepEqual(pick(of('control')), [null, null, 0.5, 20]);
    assert.deepEqual(pick(of('metadd')), [3, null, 0.5, 20]);
  });

  it('control stages ignore the weights; metadd stages are keyed by them', () => {
    const a = compile(SPEC, ['metadd.lambda_var=2']);
    const b = compile(SPEC, ['metadd.lambda_var=3']);
    const keys = (d: Dag, arm: string) => byKind(d, 'metadd').filter((n) => (n.params as unknown as MetaddParams).arm === arm).map((n) => n.key);
    assert.deepEqual(keys(a, 'control'), keys(b, 'control'));
    assert.equal(keys(a, 'metadd').filter((k) => keys(b, 'metadd').includes(k)).length, 0);
    // The aux pretraining seed is the metadd section's, not the cell's.
    const s = compile(SPEC, ['metadd.pretrain.seed=5']);
    assert.equal(byKind(s, 'pretrain').filter((n) => byKind(a, 'pretrain').some((m) => m.key === n.key)).length, 0);
  });

  it('L_pos (our extension) enters the key only with a nonzero weight, so the paper-loss stages keep theirs', () => {
    const plain = compile(SPEC);
    const zero = compile(SPEC, ['metadd.lambda_pos=0']);
    const pos = compile(SPEC, ['metadd.lambda_pos=5']);
    const keys = (d: Dag, arm: string) => byKind(d, 'metadd').filter((n) => (n.params as unknown as MetaddParams).arm === arm).map((n) => n.key);
    assert.deepEqual(keys(zero, 'metadd'), keys(plain, 'metadd'));
    assert.ok(byKind(plain, 'metadd').every((n) => !('lambda_pos' in n.params)));
    assert.equal(keys(pos, 'metadd').filter((k) => keys(plain, 'metadd').includes(k)).length, 0);
    assert.ok(byKind(pos, 'metadd').filter((n) => (n.params as unknown as MetaddParams).arm === 'metadd').every((n) => (n.params as unknown as MetaddParams).lambda_pos === 5));
    assert.deepEqual(keys(pos, 'control'), keys(plain, 'control'), 'the control arm has no weights');
  });

  it('metadd.chunk enters the key only when it differs from the default, on both arms', () => {
    const plain = compile(SPEC);
    const ten = compile(SPEC, ['metadd.chunk=10']);
    const fifty = compile(SPEC, ['metadd.chunk=50']);
    const keys = (d: Dag) => byKind(d, 'metadd').map((n) => n.key);
    assert.deepEqual(keys(ten), keys(plain), 'the default written out keeps the keys');
    assert.ok(byKind(plain, 'metadd').every((n) => !('chunk' in n.params)));
    assert.equal(keys(fifty).filter((k) => keys(plain).includes(k)).length, 0);
    assert.ok(byKind(fifty, 'metadd').every((n) => (n.params as unknown as MetaddParams).chunk === 50));
    assert.throws(() => compile(SPEC, ['metadd.chunk=0']), (err: unknown) => err instanceof SpecError && err.issues.some((i) => i.path === 'metadd.chunk'));
  });

  it('relative weights replace the lambdas in the key (control arm unchanged); a random base is refused, located', () => {
    const plain = compile(SPEC);
    const rel = compile(SPEC, ['metadd.relative_weights={ai: 0.3}']);
    const arm = (d: Dag, a: string) => byKind(d, 'metadd').filter((n) => (n.params as unknown as MetaddParams).arm === a);
    for (const n of arm(rel, 'metadd')) {
      const p = n.params as unknown as MetaddParams;
      assert.deepEqual(p.relative_weights, { ai: 0.3, var: 0.2, pos: 0 });
      assert.deepEqual([p.lambda_ai, p.lambda_var], [0, 0], 'the stage derives the weights');
    }
    assert.ok(arm(plain, 'metadd').every((n) => !('relative_weights' in n.params)), 'absolute weights: keys as before');
    assert.deepEqual(arm(rel, 'control').map((n) => n.key), arm(plain, 'control').map((n) => n.key));
    assert.throws(
      () => compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: random, ipc: 10}'), ['metadd.relative_weights={ai: 0.3}']),
      (err: unknown) => err instanceof SpecError && err.issues.some((i) => i.path === 'metadd.relative_weights' && /no loss/.test(i.message)),
    );
  });

  it('joint mode: metadd stages run the base budget from scratch; the joint control arm is the base set itself', () => {
    const dag = compile(SPEC, ['metadd.mode=joint']);
    const pretrain = byKind(dag, 'pretrain');
    const metadd = byKind(dag, 'metadd');
    assert.equal(metadd.length, 2, 'one joint metadd stage per seed; control reuses the base run');
    for (const c of dag.cells) {
      const arm = c.cell.spec.metadd.arm;
      if (arm !== 'metadd') {
        assert.equal(c.setKey, c.distillKey, `${arm}: evaluates the base set`);
        continue;
      }
      const node = dag.nodes.get(c.setKey);
      assert.equal(node?.kind, 'metadd');
      assert.deepEqual(node?.inputs, { dataset: c.datasetKey, aux0: pretrain[0].key, aux1: pretrain[1].key }, 'no base set to read');
      const p = node?.params as unknown as MetaddParams;
      assert.equal(p.mode, 'joint');
      assert.equal(p.iterations, 50, "the base method's budget, not metadd.iterations");
    }
    const controlEvals = dag.cells.filter((c) => c.cell.spec.metadd.arm === 'control').flatMap((c) => c.evals.map((e) => e.key));
    const baseEvals = dag.cells.filter((c) => c.cell.spec.metadd.arm === 'none').flatMap((c) => c.evals.map((e) => e.key));
    assert.deepEqual(controlEvals, baseEvals, 'the joint control arm shares the base evaluations');
    // metadd.iterations does not enter a joint stage's key.
    const other = compile(SPEC, ['metadd.mode=joint', 'metadd.iterations=7']);
    assert.deepEqual(byKind(other, 'metadd').map((n) => n.key), metadd.map((n) => n.key));
    assert.throws(
      () => compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: random, ipc: 10}'), ['metadd.mode=joint']),
      /metadd\.mode: 'joint'.*use metadd\.mode: refine/,
    );
  });

  it('a random subset can be aligned too (with the fallback pixel optimiser)', () => {
    const dag = compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: random, ipc: 10}'));
    const p = byKind(dag, 'metadd')[0].params as unknown as MetaddParams;
    assert.deepEqual(p.base, { method: 'random', ipc: 10 });
    assert.deepEqual([p.image_lr, p.momentum], [0.1, 0.5]);
    assert.equal(byKind(dag, 'distill')[0].needsTensors, false);
  });

  it('rejects auxiliaries without a feature map or a flatten head, at validation', () => {
    for (const bad of ['aux: [mlp, convnet]', 'aux: [{name: convnet, head: flatten}]']) {
      assert.throws(() => compile(SPEC.replace('aux: [convnet, resnet18]', bad)), (e: unknown) => e instanceof SpecError);
    }
  });

  it('resolves the DC loop rule by IPC, and names the fields to set when the rule has no entry', () => {
    const dc = compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: dc, ipc: 10}'));
    const p = byKind(dc, 'distill')[0].params;
    assert.deepEqual([p.outer_loop, p.inner_loop, p.lr_img, p.init], [10, 50, 0.1, 'noise']);
    assert.throws(
      () => compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: dc, ipc: 7}')),
      /set distill\.dc\.outer_loop and distill\.dc\.inner_loop for IPC 7/,
    );
    const set = compile(SPEC.replace('distill: {method: dm, ipc: 10, dm: {iterations: 50}}', 'distill: {method: dsa, ipc: 7, dsa: {outer_loop: 3, inner_loop: 4}}'));
    assert.deepEqual([byKind(set, 'distill')[0].params.outer_loop, byKind(set, 'distill')[0].params.inner_loop], [3, 4]);
  });

  it('DM keys hold only DM parameters, with the reference lr rule resolved', () => {
    const dag = compile(SPEC);
    const p = byKind(dag, 'distill')[0].params;
    assert.deepEqual(Object.keys(p).sort(), ['arch', 'batch_real', 'dsa', 'init', 'ipc', 'iterations', 'lr_img', 'method', 'momentum', 'seed']);
    assert.equal(p.lr_img, 1);
    const big = compile(SPEC.replace('ipc: 10', 'ipc: 100'));
    assert.equal(byKind(big, 'distill')[0].params.lr_img, 10);
    // Changing another method's block does not touch DM's key.
    const other = compile(SPEC, ['distill.dc.lr_img=0.5']);
    assert.deepEqual(byKind(other, 'distill').map((n) => n.key), byKind(dag, 'distill').map((n) => n.key));
  });
});
