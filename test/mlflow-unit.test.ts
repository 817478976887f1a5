import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { flattenParams } from '../src/tracking/flatten.js';
import { objectDir } from '../src/tracking/layout.js';
import { freePort, MLFLOW_VERSION, packageRoot } from '../src/tracking/local-ui.js';
import {
  BatchBuilder,
  DEFAULT_LIMITS,
  keyProblem,
  MlflowClient,
  splitBatch,
  truncateWithMarker,
  type KeyValue,
  type MetricPoint,
} from '../src/tracking/mlflow-client.js';
import { appendRecords, readRecords } from '../src/tracking/records-io.js';
import {
  appendRunRecords,
  createRunLog,
  listRunLogs,
  readRunLog,
  recordStage,
  updateRunLog,
  type NewRunLog,
} from '../src/tracking/run-log.js';
import { pendingCount, syncRun } from '../src/tracking/sync.js';
import { resolveTrackingUri } from '../src/tracking/uri.js';

function newLog(runId: string, startedAt = '2025-01-02T03:04:05.000Z', specPath = ''): NewRunLog {
  return {
    runId,
    spec: { name: 'unit', path: specPath },
    resolvedSpec: { a: 1 },
    cells: [],
    startedAt,
    metaddVersion: '0.1.0',
    backend: 'cpu',
  };
}

describe('flattenParams', () => {
  it('dots nested keys, keeps scalar lists as JSON, indexes lists of objects', () => {
    assert.deepEqual(
      flattenParams({ distill: { lr: 0.1, method: 'dm', on: true, none: null }, ipc: [1, 10, 50], models: [{ arch: 'convnet' }, { arch: 'mlp', w: 32 }], empty: {}, list: [] }),
      {
        'distill.lr': '0.1',
        'distill.method': 'dm',
        'distill.on': 'true',
        'distill.none': 'null',
        ipc: '[1,10,50]',
        'models.0.arch': 'convnet',
        'models.1.arch': 'mlp',
        'models.1.w': '32',
        empty: '{}',
        list: '[]',
      },
    );
    assert.deepEqual(flattenParams({ x: 1 }, 'spec'), { 'spec.x': '1' });
    assert.deepEqual(flattenParams({}), {});
    assert.throws(() => flattenParams(3));
  });
});

describe('resolveTrackingUri', () => {
  it('priority CLI > spec > MLFLOW_TRACKING_URI; none means local only', () => {
    const env = { MLFLOW_TRACKING_URI: 'http://env:5000' };
    assert.deepEqual(resolveTrackingUri({ cliUri: 'http://cli:1', specUri: 'http://spec:2', env }), { uri: 'http://cli:1', source: 'cli' });
    assert.deepEqual(resolveTrackingUri({ specUri: 'http://spec:2', env }), { uri: 'http://spec:2', source: 'spec' });
    assert.deepEqual(resolveTrackingUri({ env }), { uri: 'http://env:5000', source: 'env' });
    assert.equal(resolveTrackingUri({ env: {} }), null);
    assert.equal(resolveTrackingUri({ env: { MLFLOW_TRACKING_URI: '  ' } }), null);
    // An explicit "none" on the command line switches off the spec's and the environment's server.
    assert.equal(resolveTrackingUri({ cliUri: 'none', specUri: 'http://spec:2', env }), null);
    assert.equal(resolveTrackingUri({ specUri: 'local', env }), null);
  });
});

describe('batch limits and key checks', () => {
  it('keyProblem mirrors MLflow name validation', () => {
    for (const ok of ['loss', 'train/loss', 'a.b-c_d:e f', 'k'.repeat(250), 'accuracy_ü']) assert.equal(keyProblem(ok), undefined, ok);
    for (const bad of ['', 'k'.repeat(251), 'a$b', '/abs', 'a//b', 'a/./b', '../x', 'x/']) assert.ok(keyProblem(bad), bad);
  });

  it('splitBatch respects 1000 metrics, 100 params, 100 tags, 1000 items and the body size', () => {
    const metrics: MetricPoint[] = Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, step: i, timestamp: i }));
    const params: KeyValue[] = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'v' }));
    const tags: KeyValue[] = Array.from({ length: 150 }, (_, i) => ({ key: `t${i}`, value: 'v' }));
    const chunks = splitBatch('r', { metrics, params, tags });
    for (const c of chunks) {
      assert.ok(c.metrics.length <= 1000 && c.params.length <= 100 && c.tags.length <= 100 && c.size <= 1000);
      assert.ok(Buffer.byteLength(JSON.stringify(c.body())) < 1_000_000);
    }
    assert.equal(chunks.reduce((n, c) => n + c.metrics.length, 0), 2500);
    assert.equal(chunks.reduce((n, c) => n + c.params.length, 0), 250);
    assert.equal(chunks.reduce((n, c) => n + c.tags.length, 0), 150);
    // Metrics keep their order across requests.
    assert.deepEqual(chunks.flatMap((c) => c.metrics.map((m) => m.step)), metrics.map((m) => m.step));

    const heavy = splitBatch('r', { params: Array.from({ length: 100 }, (_, i) => ({ key: `p${i}`, value: 'é'.repeat(5999) })) });
    assert.ok(heavy.length >= 2, 'a 1.2 MB batch of 100 params is split by size');
    for (const c of heavy) assert.ok(Buffer.byteLength(JSON.stringify(c.body())) <= DEFAULT_LIMITS.maxBodyBytes);
  });

  it('a batch never holds the same param or tag key twice', () => {
    const b = new BatchBuilder('r');
    assert.equal(b.add({ kind: 'param', param: { key: 'p', value: '1' } }), true);
    assert.equal(b.add({ kind: 'param', param: { key: 'p', value: '1' } }), false);
    assert.equal(b.add({ kind: 'tag', tag: { key: 't', value: '1' } }), true);
    assert.equal(b.add({ kind: 'tag', tag: { key: 't', value: '2' } }), false);
  });

  it('truncateWithMarker fits the limit in characters (code points) and names the artifact', () => {
    const v = '😀'.repeat(7000);
    const t = truncateWithMarker(v, 6000, 'metadd/long_values/params/x.txt');
    assert.ok([...t].length <= 6000);
    assert.ok(t.startsWith('😀😀'));
    assert.match(t, /truncated by metadd from 7000 characters; full value in artifact metadd\/long_values\/params\/x\.txt\]$/);
  });
});

describe('run log and records files', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'metadd-runlog-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('create, update (serialised), read, list; the spec file is copied', async () => {
    const spec = join(root, 'exp.yaml');
    await writeFile(spec, 'name: unit\n');
    const dir = await createRunLog(root, newLog('r-b', '2025-01-02T00:00:00.000Z', spec));
    assert.equal(await readFile(join(dir, 'spec', 'exp.yaml'), 'utf8'), 'name: unit\n');
    await assert.rejects(createRunLog(root, newLog('r-b')), /already exists/);
    await createRunLog(root, newLog('r-a', '2025-01-01T00:00:00.000Z'));

    // Concurrent updates from one process must not lose each other.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => recordStage(root, 'r-b', { key: `k${i}`, kind: 'eval', label: `eval ${i}`, status: i % 2 ? 'cached' : 'computed' })),
    );
    await updateRunLog(root, 'r-b', { status: 'finished', finishedAt: '2025-01-02T01:00:00.000Z' });
    const log = await readRunLog(root, 'r-b');
    assert.equal(log.stages.length, 20);
    assert.equal(log.status, 'finished');
    await recordStage(root, 'r-b', { key: 'k3', kind: 'eval', label: 'eval 3', status: 'failed', error: 'boom' });
    assert.equal((await readRunLog(root, 'r-b')).stages.find((s) => s.key === 'k3')?.error, 'boom');
    await assert.rejects(updateRunLog(root, 'r-b', { status: 'bogus' as never }), /status must be one of/);
    assert.equal((await readRunLog(root, 'r-b')).status, 'finished', 'an invalid update is not written');

    assert.deepEqual((await listRunLogs(root)).map((l) => l.runId), ['r-a', 'r-b']);
    // No temp files are left behind by the atomic writes.
    assert.deepEqual((await readdir(dir)).filter((n) => n.endsWith('.tmp')), []);
    await assert.rejects(readRunLog(root, 'nope'), /no run log nope/);
    await assert.rejects(readRunLog(root, '../etc'), /invalid run id/);
  });

  it('readRecords: NaN survives, a torn last line is left for later, a corrupt line is an error', async () => {
    const file = join(root, 'records.jsonl');
    await appendRecords(file, [
      { type: 'metric', key: 'm', value: Number.NaN, step: 0, timestamp: 1 },
      { type: 'metric', key: 'm', value: Number.NEGATIVE_INFINITY, step: 1, timestamp: 2 },
      { type: 'param', key: 'p', value: 'v' },
    ]);
    await appendFile(file, '{"type":"metric","key":"m","value":null,"step":2,"timestamp":3}\n{"type":"tag","key":"t","va');
    const recs = await readRecords(file);
    assert.equal(recs.length, 4);
    assert.ok(recs[0].type === 'metric' && Number.isNaN(recs[0].value));
    assert.ok(recs[1].type === 'metric' && recs[1].value === Number.NEGATIVE_INFINITY);
    assert.ok(recs[3].type === 'metric' && Number.isNaN(recs[3].value));
    await appendFile(file, 'lue":"x"}\n');
    assert.equal((await readRecords(file)).length, 5);
    await appendFile(file, 'not json\n');
    await assert.rejects(readRecords(file), /records\.jsonl:6: not JSON/);
    assert.deepEqual(await readRecords(join(root, 'missing.jsonl')), []);
  });
});

describe('sync with no server reachable', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'metadd-offline-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('reports unavailable, keeps every record pending, and writes no run state it cannot back', async () => {
    const key = 'ab12'.padEnd(40, '0');
    const dir = objectDir(root, key);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'stage.json'), JSON.stringify({ key, kind: 'eval', version: 1, params: {}, inputs: {}, label: 'eval' }));
    await appendRecords(join(dir, 'records.jsonl'), Array.from({ length: 7 }, (_, i) => ({ type: 'metric' as const, key: 'acc', value: i, step: i, timestamp: i })));
    await createRunLog(root, { ...newLog('offline'), stages: [{ key, kind: 'eval', label: 'eval', status: 'computed' }] });
    await appendRunRecords(root, 'offline', [{ type: 'tag', key: 'x', value: 'y' }]);
    assert.equal(await pendingCount(root, 'offline'), 8);

    const port = await freePort();
    const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}`, retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 10 } });
    const summary = await syncRun({ root, runId: 'offline', client, experimentName: 'e' });
    assert.match(summary.unavailable ?? '', /ECONNREFUSED/);
    assert.equal(summary.complete, false);
    assert.equal(summary.pending, 8);
    assert.equal(await pendingCount(root, 'offline'), 8);
    assert.equal(await pendingCount(root, 'offline', { trackingUri: 'http://elsewhere:1', experimentName: 'e' }), 8);
    assert.equal(existsSync(join(root, 'sync')), false);
  });
});

describe('scripts/setup-mlflow.sh', () => {
  it('pins the MLflow version the code and the tests expect', async () => {
    const script = await readFile(join(packageRoot(), 'scripts', 'setup-mlflow.sh'), 'utf8');
    assert.match(script, new RegExp(`MLFLOW_VERSION="\\$\\{METADD_MLFLOW_VERSION:-${MLFLOW_VERSION.replace(/\./g, '\\.')}\\}"`));
    assert.match(script, /pip install .*"mlflow==\$MLFLOW_VERSION"/);
  });
});
