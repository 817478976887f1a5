import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSpec } from '../src/spec/resolve.js';
import { SpecError } from '../src/spec/errors.js';
import { compileDag } from '../src/dag/compile.js';
import { loadDatasetArtifact } from '../src/data/artifact.js';
import { readImageSet } from '../src/distill/image-set.js';
import { distillStage, type DistillParams } from '../src/stages/distill.js';
import { makeProject, yaml } from './helpers/project.js';
import { bytesEqual, stageContext, viewOf, writeTinyDataset } from './distill-helpers.js';

function compile(text: string) {
  const root = makeProject({ 'spec.yaml': text });
  return compileDag(resolveSpec(join(root, 'spec.yaml'), { sets: [] }), { backend: 'wasm', datasetDigest: () => 'digest' });
}

/** A one-architecture evaluation of the whole set, with the given sweep axes (YAML flow mapping body). */
function wholeSpec(axes?: string): string {
  return yaml`
    name: w
    dataset: {name: mnist}
    distill: {method: whole, ipc: 1}
    eval: {architectures: [convnet], epochs: 2, models: 1}
  ` + (axes ? `sweep: {axes: {${axes}}}\n` : '');
}

describe("distill method 'whole' (the whole training set)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'metadd-whole-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the stage writes the training split itself as the image set', async () => {
    const dsDir = join(dir, 'dataset');
    writeTinyDataset(dsDir, { classes: 3, perClass: 7, size: 6 });
    const ds = loadDatasetArtifact(dsDir);
    const params: DistillParams = { method: 'whole' };
    const { ctx, outDir, records } = stageContext('distill', params, { dataset: viewOf('dataset', dsDir) }, dir);
    await distillStage.run(ctx);
    const set = readImageSet(outDir);
    assert.deepEqual(set.shape, [21, 1, 6, 6]);
    assert.ok(bytesEqual(set.images, ds.trainX), 'images are the training images, in order');
    assert.deepEqual(Array.from(set.labels), Array.from(ds.trainY));
    assert.equal(set.meta.method, 'whole');
    assert.equal(set.meta.images, 21);
    assert.ok(existsSync(join(outDir, 'grid.png')));
    assert.ok(records.some((r) => r.type === 'param' && r.key === 'images' && r.value === '21'));
    // The dataset's own files are untouched by the link.
    assert.ok(bytesEqual(loadDatasetArtifact(dsDir).trainX, ds.trainX));
    assert.equal(JSON.parse(readFileSync(join(outDir, 'meta.json'), 'utf8')).grid, 'first 7 training images of each class');
  });

  it('plans one set for every IPC and seed, evaluated per seed', () => {
    const dag = compile(wholeSpec('distill.ipc: [1, 10], seed: [0, 1]'));
    const kinds = [...dag.nodes.values()].map((n) => n.kind);
    assert.equal(kinds.filter((k) => k === 'distill').length, 1, 'IPC and seed do not change the whole set');
    assert.equal(kinds.filter((k) => k === 'eval').length, 2, 'one evaluation per seed');
    const distill = [...dag.nodes.values()].find((n) => n.kind === 'distill');
    assert.deepEqual(distill?.params, { method: 'whole' });
    assert.equal(distill?.needsTensors, false);
    assert.ok([...dag.nodes.values()].every((n) => !n.label.includes('ipc=')), 'labels do not show an IPC that plays no part');
  });

  it('labels name the dataset when the spec has several (two whole sets would read alike)', () => {
    const dag = compile(wholeSpec('dataset.name: [mnist, fashion-mnist]'));
    const labels = [...dag.nodes.values()].filter((n) => n.kind === 'eval').map((n) => n.label);
    assert.deepEqual(labels, ['eval convnet <- mnist whole seed=0', 'eval convnet <- fashion-mnist whole seed=0']);
    const single = compile(wholeSpec());
    assert.deepEqual([...single.nodes.values()].filter((n) => n.kind === 'eval').map((n) => n.label), ['eval convnet <- whole seed=0']);
  });

  it('refuses MetaDD arms on it at validation, located, naming the way out', () => {
    assert.throws(
      () =>
        compile(yaml`
          name: w
          dataset: {name: mnist}
          distill: {method: whole, ipc: 1}
          metadd: {aux: [lenet]}
          eval: {architectures: [convnet]}
          sweep:
            axes:
              metadd.arm: [none, metadd]
        `),
      (err: unknown) => {
        assert.ok(err instanceof SpecError);
        const issue = err.issues[0];
        assert.equal(issue.path, 'metadd.arm');
        assert.equal(issue.line, 8, 'located at the sweep value that made the cell');
        assert.match(issue.message, /'metadd' aligns a distilled set.*metadd\.arm: none/);
        return true;
      },
    );
  });
});
