import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENTRY } from '../src/exec/local.js';
import { planSpec } from '../src/exec/plan-spec.js';
import type { Diagnosis, SetDiagnosis } from '../src/report/diagnose.js';
import type { SetDiagnostics } from '../src/distill/metadd/diagnostics.js';
import { loadDatasetArtifact } from '../src/data/artifact.js';
import { readImageSet } from '../src/distill/image-set.js';
import { classMeans, layoutAgainst } from '../src/report/layout.js';
import { makeProject, yaml } from './helpers/project.js';
import { writeNpyDataset } from './helpers/npy-dataset.js';

const SPEC = yaml`
  name: diag
  dataset: {name: npy, path: data}
  distill: {method: dm, ipc: 2, dm: {iterations: 4, batch_real: 8, arch: {name: convnet, width: 4, depth: 2}}}
  metadd:
    iterations: 3
    aux: [{name: convnet, width: 4, depth: 2}, {name: convnet, width: 3, depth: 1}]
    pretrain: {epochs: 2, batch: 16}
    diagnostics: {real_per_class: 4, overlays_per_class: 0}
  eval:
    architectures: [{name: mlp, width: 8}]
    models: 1
    epochs: 1
    batch: 16
  sweep:
    axes:
      metadd.arm: [none, control, metadd]
`;

function cli(root: string, args: string[]) {
  return spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MLFLOW_TRACKING_URI: '' } });
}

/** The stage's own diagnostics.json, computed inside the worker while the stage ran. */
function stageDiagnostics(root: string, sets: string[], key: string): Record<string, SetDiagnostics> {
  const plan = planSpec(join(root, 'spec.yaml'), { sets });
  return JSON.parse(readFileSync(join(plan.store.view(key).dir, 'diagnostics.json'), 'utf8')) as Record<string, SetDiagnostics>;
}

function assertSame(got: SetDiagnosis | undefined, want: SetDiagnostics, what: string): void {
  assert.ok(got, `${what}: diagnosed`);
  assert.equal(got.images, want.images, what);
  assert.deepEqual(got.meta, [want.ratios.meta], `${what}: meta ratio`);
  assert.deepEqual(got.heterogeneous, want.ratios.heterogeneous.map((h) => [h]), `${what}: heterogeneous ratios`);
  assert.deepEqual(got.accuracy, want.accuracy, `${what}: accuracy`);
}

test('diagnose recomputes what each metadd stage saw, adds the base set in joint mode, and other thresholds', () => {
  const root = makeProject({ 'spec.yaml': SPEC });
  writeNpyDataset(join(root, 'data'), { classes: 3, trainPerClass: 12, testPerClass: 6, size: 8 });

  // Before anything ran there is no store: an error (a mistyped --store looks the same), not an empty diagnosis.
  const noStore = cli(root, ['diagnose', 'spec.yaml']);
  assert.equal(noStore.status, 1);
  assert.match(noStore.stderr, /no store at .*\.metadd \(the spec's store\)/);
  mkdirSync(join(root, '.metadd'));
  const before = cli(root, ['diagnose', 'spec.yaml', '--json']);
  assert.equal(before.status, 0, before.stderr);
  const empty = JSON.parse(before.stdout) as Diagnosis;
  assert.equal(empty.groups[0].stages.length, 2, 'the control and metadd stages');
  assert.ok(empty.groups[0].stages.every((s) => !s.real && !s.base && !s.aligned), 'nothing computed, nothing diagnosed');
  assert.ok(empty.missing.some((m) => m.startsWith('pretrain aux')), empty.missing.join('; '));

  const run = cli(root, ['run', 'spec.yaml', '-j', '1']);
  assert.equal(run.status, 0, run.stderr + run.stdout);
  const out = cli(root, ['diagnose', 'spec.yaml', '--json']);
  assert.equal(out.status, 0, out.stderr);
  const d = JSON.parse(out.stdout) as Diagnosis;
  assert.deepEqual(d.taus, [0.5], "the spec's tau");
  assert.deepEqual(d.missing, []);
  assert.equal(d.groups.length, 1);
  assert.equal(d.groups[0].aux.length, 2);
  const byArm = Object.fromEntries(d.groups[0].stages.map((s) => [s.arm, s]));
  for (const arm of ['control', 'metadd'] as const) {
    const s = byArm[arm];
    const own = stageDiagnostics(root, [], s.key);
    assertSame(s.real, own.real, `${arm} real`);
    assertSame(s.base, own.base, `${arm} base`);
    assertSame(s.aligned, own.aligned, `${arm} aligned`);
  }
  assert.equal(byArm.control.base?.key, byArm.metadd.base?.key, 'both arms start from the same base set');
  // Pixel space: each set against the class means of the dataset artifact's training images.
  const plan = planSpec(join(root, 'spec.yaml'));
  const cell = plan.dag.cells.find((c) => c.metaddKey === byArm.metadd.key);
  assert.ok(cell);
  const ds = loadDatasetArtifact(plan.store.view(cell.datasetKey).dir);
  const means = classMeans(ds.trainX, ds.trainY, ds.meta.classes, ds.meta.channels * ds.meta.height * ds.meta.width);
  assert.deepEqual(byArm.metadd.aligned?.layout, layoutAgainst(means, readImageSet(plan.store.view(byArm.metadd.key).dir)));
  assert.deepEqual(byArm.metadd.base?.layout, layoutAgainst(means, readImageSet(plan.store.view(cell.distillKey).dir)));
  assert.ok(byArm.metadd.real?.layout && byArm.metadd.real.layout.ownCorrelation > 0, 'real images correlate with their class mean');
  assert.notDeepEqual(byArm.control.aligned, byArm.metadd.aligned);

  // Joint mode: the stage records its initial set; diagnose adds the base method's final set, the
  // distill stage the refine arms started from, so it reads as the refine stages' 'base'.
  const joint = ['--set', 'metadd.mode=joint'];
  assert.equal(cli(root, ['run', 'spec.yaml', '-j', '1', ...joint]).status, 0);
  const dj = JSON.parse(cli(root, ['diagnose', 'spec.yaml', '--json', ...joint]).stdout) as Diagnosis;
  const js = dj.groups[0].stages;
  assert.deepEqual(js.map((s) => [s.arm, s.mode]), [['metadd', 'joint']], 'the joint control arm is the base run itself: no stage');
  const ownJoint = stageDiagnostics(root, joint.slice(1), js[0].key);
  assert.ok('init' in ownJoint && !('base' in ownJoint));
  assertSame(js[0].aligned, ownJoint.aligned, 'joint aligned');
  assertSame(js[0].real, ownJoint.real, 'joint real');
  assert.deepEqual(js[0].base, byArm.metadd.base, 'the base set of the refine arms');

  // Several thresholds: the stage's column is the same; at 0 every pixel of every normalised CAM counts.
  const dt = JSON.parse(cli(root, ['diagnose', 'spec.yaml', '--json', '--tau', '0,0.5,0.9']).stdout) as Diagnosis;
  assert.deepEqual(dt.taus, [0, 0.5, 0.9]);
  const m = dt.groups[0].stages.find((s) => s.arm === 'metadd');
  assert.ok(m?.aligned && byArm.metadd.aligned);
  assert.equal(m.aligned.meta[0], 1);
  assert.equal(m.aligned.meta[1], byArm.metadd.aligned.meta[0]);
  assert.deepEqual(m.aligned.heterogeneous.map((h) => h[0]), [0, 0]);

  const text = cli(root, ['diagnose', 'spec.yaml']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /\| stage +\| set +\| images \| meta 0\.5 \|.*\| r mean \| nearest mean \|/);
  assert.match(text.stdout, /metadd arm, meta ratio of its set against the base set's: tau 0\.5: above on \d of 1 \(mean [+-]\d\.\d{3}\)/);
  assert.match(text.stdout, /control arm, meta ratio/);

  const badTau = cli(root, ['diagnose', 'spec.yaml', '--tau', '0.5,1.5']);
  assert.notEqual(badTau.status, 0);
  assert.match(badTau.stderr, /'1\.5' is not a threshold in \[0, 1\]/);
  const noArm = cli(root, ['diagnose', 'spec.yaml', '--set', 'sweep.axes.metadd.arm=[none]']);
  assert.equal(noArm.status, 1);
  assert.match(noArm.stderr, /diag: no cell has a MetaDD arm to diagnose/);
});
