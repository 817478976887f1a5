import assert from 'node:assert/strict';
import { execFile, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findMlflowBinary, MLFLOW_VERSION, startLocalUi } from '../src/tracking/local-ui.js';
import {
  longValueArtifactPath,
  MlflowClient,
  MlflowValidationError,
  type KeyValue,
  type MetricPoint,
} from '../src/tracking/mlflow-client.js';
import { mlflowSuiteOptions } from './helpers/mlflow-server.js';

const here = dirname(fileURLToPath(import.meta.url));

function runChild(url: string, startAt: number, names: string[]): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = fork(join(here, 'helpers', 'mlflow-child.js'), ['get-or-create', url, String(startAt), ...names], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Record<string, string>) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

describe('MlflowClient against a real MLflow server (started by startLocalUi)', mlflowSuiteOptions(), () => {
  let root: string;
  let ui: { url: string; stop(): Promise<void> };
  let client: MlflowClient;
  let expId: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'metadd-client-'));
    ui = await startLocalUi(root, 0);
    client = new MlflowClient({ trackingUri: ui.url, retry: { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100 } });
    expId = (await client.getOrCreateExperiment('client-test')).experiment_id;
  });

  after(async () => {
    await ui?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('the installed MLflow is the pinned version', async () => {
    const bin = findMlflowBinary();
    assert.ok(bin);
    const { stdout } = await promisify(execFile)(bin, ['--version']);
    assert.match(stdout, new RegExp(`version ${MLFLOW_VERSION.replace(/\./g, '\\.')}\\b`));
  });

  it('startLocalUi keeps its database and artifacts under <root>/mlflow', () => {
    assert.ok(existsSync(join(root, 'mlflow', 'mlflow.db')));
    assert.ok(existsSync(join(root, 'mlflow', 'artifacts')));
    assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('experiments, runs: create, get, update, search, set-tag', async () => {
    assert.equal(await client.getExperimentByName('does-not-exist'), undefined);
    assert.equal((await client.getOrCreateExperiment('client-test')).experiment_id, expId);
    const run = await client.createRun({ experimentId: expId, runName: 'basic', startTime: 1_700_000_000_000, tags: [{ key: 'k', value: 'v1' }] });
    assert.equal(run.info.status, 'RUNNING');
    assert.match(run.info.artifact_uri, /^mlflow-artifacts:\//);
    await client.setTag(run.info.run_id, 'k', 'v2');
    const info = await client.updateRun(run.info.run_id, { status: 'FINISHED', endTime: 1_700_000_001_000 });
    assert.equal(info.status, 'FINISHED');
    const got = await client.getRun(run.info.run_id);
    assert.equal(got.info.end_time, 1_700_000_001_000);
    assert.equal(got.data.tags?.find((t) => t.key === 'k')?.value, 'v2');
    assert.equal(got.data.tags?.find((t) => t.key === 'mlflow.runName')?.value, 'basic');
    const found = await client.searchRuns({ experimentIds: [expId], filter: "tags.k = 'v2'" });
    assert.deepEqual(found.runs.map((r) => r.info.run_id), [run.info.run_id]);
    assert.equal(await client.findRun('0123456789abcdef0123456789abcdef'), undefined);
  });

  it('log-batch splits >1000 metrics, >100 params, >100 tags and >1 MB bodies into accepted requests', async () => {
    const run = await client.createRun({ experimentId: expId, runName: 'split' });
    const metrics: MetricPoint[] = Array.from({ length: 2345 }, (_, i) => ({ key: i % 2 ? 'odd' : 'even', value: i / 7, step: i, timestamp: 1_700_000_000_000 + i }));
    // 150 params of ~5 kB plus 130 tags of ~4.9 kB: about 1.4 MB, over the body limit as one request.
    const params: KeyValue[] = Array.from({ length: 150 }, (_, i) => ({ key: `p${i}`, value: `${i}:${'x'.repeat(5000)}` }));
    const tags: KeyValue[] = Array.from({ length: 130 }, (_, i) => ({ key: `t${i}`, value: `${i}:${'y'.repeat(4900)}` }));
    await client.logBatch(run.info.run_id, { metrics, params, tags });
    const got = await client.getRun(run.info.run_id);
    assert.equal(got.data.params?.length, 150);
    assert.equal(got.data.params?.find((p) => p.key === 'p149')?.value, params[149].value);
    assert.equal(got.data.tags?.filter((t) => t.key.startsWith('t')).length, 130);
    const odd = await client.getMetricHistory(run.info.run_id, 'odd');
    const even = await client.getMetricHistory(run.info.run_id, 'even');
    assert.equal(odd.length + even.length, 2345);
    assert.deepEqual(odd.map((m) => m.step).sort((a, b) => a - b), metrics.filter((m) => m.key === 'odd').map((m) => m.step));
  });

  it('over-long param and tag values: truncated with a marker, full value stored as an artifact', async () => {
    const run = await client.createRun({ experimentId: expId, runName: 'long' });
    const longParam = `start-${'p'.repeat(7000)}-end`;
    const longTag = `start-${'t'.repeat(9000)}-end`;
    await client.logBatch(run.info.run_id, { params: [{ key: 'spec.notes', value: longParam }], tags: [{ key: 'mlflow.note.content', value: longTag }] });
    const got = await client.getRun(run.info.run_id);
    const p = got.data.params?.find((x) => x.key === 'spec.notes')?.value ?? '';
    const t = got.data.tags?.find((x) => x.key === 'mlflow.note.content')?.value ?? '';
    assert.ok(p.length <= 6000 && p.startsWith('start-ppp'), `param length ${p.length}`);
    assert.ok(t.length <= 5000 && t.startsWith('start-ttt'), `tag length ${t.length}`);
    const pPath = longValueArtifactPath('param', 'spec.notes');
    const tPath = longValueArtifactPath('tag', 'mlflow.note.content');
    assert.ok(p.endsWith(`full value in artifact ${pPath}]`), p.slice(-120));
    assert.ok(t.endsWith(`full value in artifact ${tPath}]`), t.slice(-120));
    assert.equal((await client.downloadArtifact(run.info.run_id, pPath)).toString('utf8'), longParam);
    assert.equal((await client.downloadArtifact(run.info.run_id, tPath)).toString('utf8'), longTag);
    // Re-logging the same long param is accepted: the truncation is deterministic.
    await client.logBatch(run.info.run_id, { params: [{ key: 'spec.notes', value: longParam }] });
  });

  it('keys MLflow would refuse are rejected before anything is sent', async () => {
    const run = await client.createRun({ experimentId: expId, runName: 'bad-keys' });
    await assert.rejects(
      client.logBatch(run.info.run_id, {
        params: [{ key: 'ok', value: '1' }, { key: 'k'.repeat(251), value: '1' }],
        metrics: [{ key: 'a/../b', value: 1, step: 0, timestamp: 1 }, { key: 'loss', value: 1, step: 0.5, timestamp: 1 }],
        tags: [{ key: 'bad$char', value: 'x' }],
      }),
      (err: unknown) => {
        assert.ok(err instanceof MlflowValidationError);
        assert.equal(err.problems.length, 4, err.message);
        return true;
      },
    );
    assert.deepEqual((await client.getRun(run.info.run_id)).data.params ?? [], [], 'the valid param was not sent either');
  });

  it('non-finite metric values round-trip', async () => {
    const run = await client.createRun({ experimentId: expId, runName: 'nan' });
    await client.logBatch(run.info.run_id, {
      metrics: [
        { key: 'm', value: Number.NaN, step: 0, timestamp: 1 },
        { key: 'm', value: Number.POSITIVE_INFINITY, step: 1, timestamp: 1 },
        { key: 'm', value: -2.5, step: 2, timestamp: 1 },
      ],
    });
    const h = (await client.getMetricHistory(run.info.run_id, 'm')).sort((a, b) => a.step - b.step);
    assert.deepEqual(h.map((m) => m.value), ['NaN', Number.MAX_VALUE, -2.5]);
  });

  it('artifacts: streamed file upload and in-memory upload, listed and downloaded byte-equal', async () => {
    const run = await client.createRun({ experimentId: expId, runName: 'artifacts' });
    const big = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(root, 'big.bin');
    await writeFile(file, big);
    await client.uploadArtifact(run.info.run_id, 'nested dir/big.bin', { file });
    await client.uploadArtifact(run.info.run_id, 'notes.txt', { data: 'héllo\n' });
    const files = await client.listAllArtifacts(run.info.run_id);
    assert.deepEqual(files.map((f) => [f.path, f.file_size]).sort(), [['nested dir/big.bin', big.length], ['notes.txt', 7]]);
    assert.deepEqual(await client.downloadArtifact(run.info.run_id, 'nested dir/big.bin'), big);
    assert.equal((await client.downloadArtifact(run.info.run_id, 'notes.txt')).toString('utf8'), 'héllo\n');
    await assert.rejects(client.uploadArtifact(run.info.run_id, '../escape.txt', { data: 'x' }), MlflowValidationError);
  });

  it('two processes racing to get-or-create the same experiments agree on one id each', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `race-${i}-${randomBytes(3).toString('hex')}`);
    const startAt = Date.now() + 1500;
    const [a, b] = await Promise.all([runChild(ui.url, startAt, names), runChild(ui.url, startAt, names)]);
    assert.deepEqual(a, b);
    for (const n of names) {
      const exp = await client.getExperimentByName(n);
      assert.equal(exp?.experiment_id, a[n]);
    }
    // And within one process, concurrent promises.
    const same = await Promise.all(Array.from({ length: 6 }, () => client.getOrCreateExperiment('race-in-process')));
    assert.equal(new Set(same.map((e) => e.experiment_id)).size, 1);
  });
});
