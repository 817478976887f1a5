import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compileDag, type Dag } from '../src/dag/compile.js';
import { resolveSpec } from '../src/spec/resolve.js';
import type { PretrainParams } from '../src/stages/pretrain.js';
import { makeProject, yaml } from './helpers/project.js';

const SPEC = yaml`
  name: mtt
  dataset: {name: mnist}
  distill:
    method: mtt
    ipc: 1
    mtt: {experts: 3, expert_epochs: 6, max_start_epoch: 3, expert_epochs_matched: 2, iterations: 10}
  metadd: {aux: [convnet], iterations: 5, pretrain: {epochs: 2}}
  eval: {architectures: [convnet], epochs: 10}
  sweep:
    axes:
      metadd.arm: [none, metadd]
      seed: [0, 1]
`;

function compile(text: string, sets: string[] = []): Dag {
  const root = makeProject({ 'spec.yaml': text });
  return compileDag(resolveSpec(join(root, 'spec.yaml'), { sets }), { backend: 'wasm', datasetDigest: () => 'digest' });
}

function byKind(dag: Dag, kind: string) {
  return dag.order.map((k) => dag.nodes.get(k)).filter((n) => n?.kind === kind) as NonNullable<ReturnType<Dag['nodes']['get']>>[];
}

function expertKeys(dag: Dag): string[] {
  return byKind(dag, 'pretrain')
    .filter((n) => (n.params as unknown as PretrainParams).snapshots)
    .map((n) => n.key);
}

describe('DAG: MTT', () => {
  it('every MTT cell reads the same E expert pretrain stages; the metadd stage gets the same expert inputs', () => {
    const dag = compile(SPEC);
    const experts = byKind(dag, 'pretrain').filter((n) => (n.params as unknown as PretrainParams).snapshots);
    assert.equal(experts.length, 3, 'three experts shared by four cells');
    for (const [i, e] of experts.entries()) {
      const p = e.params as unknown as PretrainParams;
      assert.equal(p.seed, i);
      assert.equal(p.epochs, 6);
      assert.equal(p.lr, 0.01);
      assert.equal(p.decay_epoch, null, 'constant lr');
      assert.equal(p.momentum, 0);
      assert.deepEqual(p.arch, { name: 'convnet' });
      assert.deepEqual(e.cells, [0, 1, 2, 3]);
    }
    const keys = experts.map((e) => e.key);
    const distill = byKind(dag, 'distill');
    assert.equal(distill.length, 2, 'one distill stage per seed');
    for (const d of distill) {
      assert.deepEqual([d.inputs.expert0, d.inputs.expert1, d.inputs.expert2], keys);
      assert.equal(d.inputs.expert3, undefined);
      assert.equal(d.params.experts, 3);
      assert.equal(d.params.method, 'mtt');
    }
    for (const e of byKind(dag, 'eval')) assert.equal(e.params.lr_from_set, true, 'MTT sets are evaluated with their learned lr');
    const fixedLr = compile(SPEC, ['distill.mtt.eval_learned_lr=false']);
    for (const e of byKind(fixedLr, 'eval')) assert.equal(e.params.lr_from_set, undefined);
    const metadd = byKind(dag, 'metadd');
    assert.equal(metadd.length, 2);
    for (const m of metadd) {
      assert.deepEqual([m.inputs.expert0, m.inputs.expert1, m.inputs.expert2], keys);
      assert.ok(m.inputs.aux0 !== undefined && !keys.includes(m.inputs.aux0), 'aux networks are not experts');
    }
    // Inputs come before the stages that read them.
    const pos = new Map(dag.order.map((k, i) => [k, i]));
    for (const k of dag.order) for (const up of Object.values(dag.nodes.get(k)?.inputs ?? {})) assert.ok((pos.get(up) ?? Infinity) < (pos.get(k) ?? -1));
  });

  it('the expert protocol keys the experts; distillation parameters do not', () => {
    const base = expertKeys(compile(SPEC));
    assert.deepEqual(expertKeys(compile(SPEC, ['distill.mtt.lr_img=500', 'distill.mtt.syn_steps=5'])), base);
    const lr = expertKeys(compile(SPEC, ['distill.mtt.expert_lr=0.02']));
    assert.equal(lr.filter((k) => base.includes(k)).length, 0);
    // More experts keep the first ones.
    const more = expertKeys(compile(SPEC, ['distill.mtt.experts=4']));
    assert.deepEqual(more.slice(0, 3), base);
    assert.equal(more.length, 4);
  });

  it('clip_pixels keys the distill and metadd stages when on, and leaves the keys of earlier sets alone when off', () => {
    const distillKeys = (dag: Dag) => byKind(dag, 'distill').map((n) => n.key);
    const plain = compile(SPEC);
    for (const d of byKind(plain, 'distill')) assert.ok(!('clip_pixels' in d.params), 'the default adds nothing to the key');
    assert.deepEqual(distillKeys(compile(SPEC, ['distill.mtt.clip_pixels=false'])), distillKeys(plain));
    const clipped = compile(SPEC, ['distill.mtt.clip_pixels=true']);
    assert.equal(distillKeys(clipped).filter((k) => distillKeys(plain).includes(k)).length, 0);
    for (const d of byKind(clipped, 'distill')) assert.equal(d.params.clip_pixels, true);
    const metadd = byKind(clipped, 'metadd');
    assert.ok(metadd.length > 0);
    for (const m of metadd) assert.equal((m.params.base as Record<string, unknown>).clip_pixels, true);
    // The experts do not depend on it.
    assert.deepEqual(expertKeys(clipped), expertKeys(plain));
  });

  it('a start epoch that would pass the last expert epoch is refused, naming the field', () => {
    assert.throws(() => compile(SPEC, ['distill.mtt.max_start_epoch=6']), /distill\.mtt\.max_start_epoch/);
    // The largest start that fits: max_start_epoch - 1 + M = expert_epochs.
    assert.doesNotThrow(() => compile(SPEC, ['distill.mtt.max_start_epoch=5']));
  });

  it('other methods get no expert stages', () => {
    const dag = compile(SPEC.replace('method: mtt', 'method: dm'));
    assert.equal(expertKeys(dag).length, 0);
    for (const d of byKind(dag, 'distill')) assert.deepEqual(Object.keys(d.inputs), ['dataset']);
  });
});
