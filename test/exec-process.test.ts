import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DagBuilder, type Dag } from '../src/dag/compile.js';
import { schedule } from '../src/exec/scheduler.js';
import { LocalExecutor, CLI_ENTRY } from '../src/exec/local.js';
import { Store } from '../src/store/store.js';
import { parseEvent } from '../src/exec/events.js';
import { hashJson } from '../src/store/hash.js';
import { writeNpyDataset } from './helpers/npy-dataset.js';

function datasetDag(store: Store, dirs: string[], ipc = 2): Dag {
  const b = new DagBuilder('cpu', { name: 't', file: 't.yaml' });
  dirs.forEach((dir, i) => {
    const ds = b.add('dataset', { name: 'npy', digest: hashJson(dir) }, {}, `dataset ${i}`, false, i, { path: dir });
    b.add('distill', { method: 'random', ipc, seed: i }, { dataset: ds }, `random ${i}`, false, i);
  });
  const dag: Dag = { nodes: b.nodes, order: b.order, cells: [], reportKey: '' };
  for (const key of dag.order) {
    const { cells: _c, ...def } = dag.nodes.get(key) as NonNullable<ReturnType<typeof dag.nodes.get>>;
    store.writeStageDef(def);
  }
  return dag;
}

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

test('independent stages run at the same time in separate worker processes', async () => {
  const store = new Store(tmp('metadd-store-'));
  const dirs = [0, 1].map((i) => writeNpyDataset(join(tmp('metadd-data-'), `d${i}`), { trainPerClass: 4000, size: 28, seed: i }));
  const dag = datasetDag(store, dirs);
  const times = new Map<string, { start?: number; end?: number }>();
  const summary = await schedule(dag, store, new LocalExecutor(store), {
    jobs: 2,
    onEvent: (e) => {
      const key = e.type === 'result' ? e.result.key : e.key;
      const t = times.get(key) ?? {};
      if (e.type === 'status' && e.status === 'started') t.start = Date.now();
      if (e.type === 'result') t.end = Date.now();
      times.set(key, t);
    },
  });
  assert.deepEqual(summary.results.map((r) => r.status), ['computed', 'computed', 'computed', 'computed']);
  const [a, b] = dag.order.filter((k) => dag.nodes.get(k)?.kind === 'dataset').map((k) => times.get(k) ?? {});
  assert.ok(a.start !== undefined && b.start !== undefined && a.end !== undefined && b.end !== undefined);
  assert.ok(a.start < b.end && b.start < a.end, `dataset stages overlapped: ${JSON.stringify([a, b])}`);
  for (const key of dag.order) {
    assert.ok(store.has(key));
    assert.deepEqual(await store.verify(key), []);
  }
  // A second run computes nothing and starts no worker.
  const again = await schedule(dag, store, new LocalExecutor(store), { jobs: 2 });
  assert.deepEqual(again.results.map((r) => r.status), ['cached', 'cached', 'cached', 'cached']);
});

test('a failing stage reports its log tail and skips its dependents only', async () => {
  const store = new Store(tmp('metadd-store-'));
  const good = writeNpyDataset(join(tmp('metadd-data-'), 'good'));
  const dag = datasetDag(store, [good], 1000);
  const summary = await schedule(dag, store, new LocalExecutor(store), { jobs: 2 });
  const [ds, distill] = summary.results;
  assert.equal(ds.status, 'computed');
  assert.equal(distill.status, 'failed');
  assert.match(distill.error ?? '', /fewer than ipc = 1000/);
});

function startWorker(storeRoot: string, key: string) {
  const child = spawn(process.execPath, [CLI_ENTRY, 'exec-stage', '--store', storeRoot, key], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: string[] = [];
  let buffer = '';
  const waiters: { status: string; resolve: () => void }[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const e = parseEvent(line);
      if (e?.type === 'status') {
        events.push(e.status);
        for (const w of waiters.filter((x) => x.status === e.status)) w.resolve();
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (status: string) => new Promise<void>((resolve) => (events.includes(status) ? resolve() : waiters.push({ status, resolve })));
  return { child, events, exited, waitFor };
}

test('a worker killed mid-stage leaves nothing visible, and the next attempt takes over its lock at once', async () => {
  const store = new Store(tmp('metadd-store-'));
  const dir = writeNpyDataset(join(tmp('metadd-data-'), 'big'), { trainPerClass: 3000, size: 28, classes: 3 });
  const dag = datasetDag(store, [dir]);
  const key = dag.order[0];
  const w = startWorker(store.root, key);
  await w.waitFor('started');
  w.child.kill('SIGKILL');
  await w.exited;
  assert.equal(store.has(key), false, 'no artifact after the kill');
  assert.equal(existsSync(store.objectDir(key)), false, 'nothing half-written under objects/');
  assert.ok(readdirSync(join(store.root, 'tmp')).length >= 1, 'the partial output stayed in tmp/');
  const t0 = Date.now();
  const again = startWorker(store.root, key);
  assert.equal(await again.exited, 0);
  assert.ok(Date.now() - t0 < 10_000, 'the dead holder was detected without waiting for lock staleness');
  assert.ok(again.events.includes('done'));
  assert.deepEqual(await store.verify(key), []);
  const gc = await store.gc(false);
  assert.equal(gc.tmp.length, 1, 'gc removes the killed attempt\'s temporary directory');
});

test('two processes asked for the same stage compute it once', async () => {
  const store = new Store(tmp('metadd-store-'));
  const dir = writeNpyDataset(join(tmp('metadd-data-'), 'same'), { trainPerClass: 2000, size: 28, classes: 3 });
  const key = datasetDag(store, [dir]).order[0];
  const a = startWorker(store.root, key);
  const b = startWorker(store.root, key);
  assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0]);
  const outcomes = [a.events, b.events].map((e) => (e.includes('done') ? 'computed' : e.includes('cached') ? 'cached' : 'none'));
  assert.deepEqual(outcomes.sort(), ['cached', 'computed']);
});
