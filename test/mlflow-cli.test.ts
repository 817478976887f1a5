import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI_ENTRY } from '../src/exec/local.js';
import { MlflowClient } from '../src/tracking/mlflow-client.js';
import { makeProject, yaml } from './helpers/project.js';
import { writeNpyDataset } from './helpers/npy-dataset.js';
import { mlflowSuiteOptions, startTestServer } from './helpers/mlflow-server.js';

const SPEC = yaml`
  name: tracked
  dataset: {name: npy, path: data}
  distill: {method: random, ipc: 2}
  eval: {architectures: [{name: mlp, width: 16}], models: 1, epochs: 2, batch: 16}
  sweep:
    axes:
      seed: [0, 1]
`;

test('metadd run logs to MLflow through the CLI; a re-run adds a parent run but no duplicate stage runs', mlflowSuiteOptions(), async () => {
  const server = await startTestServer();
  try {
    const root = makeProject({ 'spec.yaml': SPEC });
    writeNpyDataset(join(root, 'data'), { classes: 3, trainPerClass: 8, testPerClass: 4, size: 8 });
    const run = (extra: string[] = []) =>
      spawnSync(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '--tracking-uri', server.url, ...extra], { cwd: root, encoding: 'utf8' });
    const first = run();
    assert.equal(first.status, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /MLflow: logged to/);
    const client = new MlflowClient({ trackingUri: server.url });
    const exp = await client.getOrCreateExperiment('tracked');
    const runs = await client.searchAllRuns({ experimentIds: [exp.experiment_id] });
    const children = runs.filter((r) => r.data.tags?.some((t) => t.key === 'mlflow.parentRunId'));
    const parents = runs.filter((r) => !r.data.tags?.some((t) => t.key === 'mlflow.parentRunId'));
    assert.equal(parents.length, 1);
    // dataset + 2 random subsets + 2 evals + report
    assert.equal(children.length, 6);
    const evalRun = children.find((r) => r.data.tags?.some((t) => t.key === 'metadd.stage_kind' && t.value === 'eval'));
    assert.ok(evalRun, 'eval stages have child runs');
    assert.ok((evalRun.data.metrics ?? []).length > 0, 'with metrics');

    const second = run();
    assert.equal(second.status, 0, second.stderr);
    const after = await client.searchAllRuns({ experimentIds: [exp.experiment_id] });
    assert.equal(after.filter((r) => !r.data.tags?.some((t) => t.key === 'mlflow.parentRunId')).length, 2, 'one parent per invocation');
    assert.equal(after.length - 2, 6, 'cached stages are not logged again');

    // With the server down the run goes on and says what is pending; `metadd sync` sends it later.
    await server.stop();
    const offline = run(['--set', 'eval.epochs=3']);
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(offline.stdout, /record\(s\) pending/);
    await server.restart();
    const sync = spawnSync(process.execPath, [CLI_ENTRY, 'sync', '--tracking-uri', server.url], { cwd: root, encoding: 'utf8' });
    assert.equal(sync.status, 0, sync.stdout + sync.stderr);
    const final = await client.searchAllRuns({ experimentIds: [exp.experiment_id] });
    assert.equal(final.filter((r) => !r.data.tags?.some((t) => t.key === 'mlflow.parentRunId')).length, 3);
    assert.equal(final.length - 3, 6 + 3, 'the offline run\'s new stages (2 evals + report) arrived once');
  } finally {
    await server.dispose();
  }
});
