import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DagBuilder, type Dag, type StageNode } from '../src/dag/compile.js';
import { schedule, type Executor } from '../src/exec/scheduler.js';
import { Store } from '../src/store/store.js';
import type { WorkerEvent } from '../src/exec/events.js';
import { explainWasmAbort } from '../src/exec/worker.js';

/** An in-process executor that records the order and overlap of calls; stages named 'fail*' fail. */
class FakeExecutor implements Executor {
  readonly name = 'fake';
  running = 0;
  maxRunning = 0;
  started: string[] = [];
  async run(node: StageNode, _onEvent: (e: WorkerEvent) => void, signal: AbortSignal): Promise<'computed'> {
    this.started.push(node.label);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 30);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new Error('interrupted'));
        });
      });
      if (node.label.startsWith('fail')) throw new Error(`${node.label} broke`);
      return 'computed';
    } finally {
      this.running--;
    }
  }
}

/** a -> b -> c, a -> fail1 -> d, e (independent). */
function diamond(): Dag {
  const b = new DagBuilder('cpu', { name: 't', file: 't.yaml' });
  const a = b.add('dataset', { id: 'a' }, {}, 'a', false, 0);
  const bb = b.add('distill', { id: 'b' }, { dataset: a }, 'b', false, 0);
  b.add('eval', { id: 'c' }, { images: bb }, 'c', false, 0);
  const f = b.add('distill', { id: 'f' }, { dataset: a }, 'fail1', false, 0);
  b.add('eval', { id: 'd' }, { images: f }, 'd', false, 0);
  b.add('dataset', { id: 'e' }, {}, 'e', false, 0);
  return { nodes: b.nodes, order: b.order, cells: [], reportKey: '' };
}

const store = (): Store => new Store(mkdtempSync(join(tmpdir(), 'metadd-sched-')));

test('a failed stage fails only its dependents; the rest runs on', async () => {
  const exec = new FakeExecutor();
  const summary = await schedule(diamond(), store(), exec, { jobs: 2 });
  const by = Object.fromEntries(summary.results.map((r) => [r.label, r]));
  assert.equal(by.a.status, 'computed');
  assert.equal(by.b.status, 'computed');
  assert.equal(by.c.status, 'computed');
  assert.equal(by.e.status, 'computed');
  assert.equal(by.fail1.status, 'failed');
  assert.match(by.fail1.error ?? '', /fail1 broke/);
  assert.equal(by.d.status, 'skipped');
  assert.equal(by.d.because, by.fail1.key);
  assert.ok(!exec.started.includes('d'));
});

test('never more than `jobs` stages at once, and inputs always finish first', async () => {
  for (const jobs of [1, 2, 3]) {
    const exec = new FakeExecutor();
    const finished: string[] = [];
    await schedule(diamond(), store(), exec, { jobs, onEvent: (e) => e.type === 'result' && finished.push(e.result.label) });
    assert.ok(exec.maxRunning <= jobs);
    if (jobs > 1) assert.ok(exec.maxRunning > 1, 'independent stages overlap');
    assert.ok(finished.indexOf('a') < finished.indexOf('b'));
    assert.ok(finished.indexOf('b') < finished.indexOf('c'));
  }
});

test('aborting stops dispatch and reports the run as interrupted', async () => {
  const exec = new FakeExecutor();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 10);
  const summary = await schedule(diamond(), store(), exec, { jobs: 1, signal: controller.signal });
  assert.equal(summary.interrupted, true);
  assert.ok(summary.results.some((r) => r.status === 'pending'));
});

test('stages that unlock more work are dispatched first', async () => {
  const b = new DagBuilder('cpu', { name: 't', file: 't.yaml' });
  const a = b.add('dataset', { id: 'a' }, {}, 'a', false, 0);
  b.add('eval', { id: 'leaf1' }, { dataset: a }, 'leaf1', false, 0);
  b.add('eval', { id: 'leaf2' }, { dataset: a }, 'leaf2', false, 0);
  const x = b.add('distill', { id: 'x' }, { dataset: a }, 'x', false, 0);
  const y = b.add('metadd', { id: 'y' }, { images: x }, 'y', false, 0);
  b.add('eval', { id: 'z' }, { images: y }, 'z', false, 0);
  const exec = new FakeExecutor();
  await schedule({ nodes: b.nodes, order: b.order, cells: [], reportKey: '' }, store(), exec, { jobs: 1 });
  assert.deepEqual(exec.started, ['a', 'x', 'y', 'leaf1', 'leaf2', 'z']);
});

test('a ready stage that another process is computing is passed over for one nobody holds', async () => {
  // x (more dependents: first by priority) and y are both ready; another process holds x's lock.
  const b = new DagBuilder('cpu', { name: 't', file: 't.yaml' });
  const x = b.add('dataset', { id: 'x' }, {}, 'x', false, 0);
  b.add('eval', { id: 'x1' }, { images: x }, 'x1', false, 0);
  b.add('dataset', { id: 'y' }, {}, 'y', false, 0);
  const dag: Dag = { nodes: b.nodes, order: b.order, cells: [], reportKey: '' };
  const s = store();
  const release = await s.tryLock(x);
  assert.ok(release, 'the test holds x');
  const exec = new FakeExecutor();
  const summary = schedule(dag, s, exec, { jobs: 1 });
  // Give the other process's stage back once y has run.
  const poll = setInterval(() => {
    if (exec.started.includes('y')) {
      clearInterval(poll);
      void release();
    }
  }, 5);
  await summary;
  assert.deepEqual(exec.started, ['y', 'x', 'x1'], 'y first although x has the higher priority');
  // Without the lock, priority decides.
  const free = new FakeExecutor();
  await schedule(dag, store(), free, { jobs: 1 });
  assert.deepEqual(free.started, ['x', 'x1', 'y']);
});

test('a WebAssembly heap abort becomes an error that says what to lower; other errors pass through', () => {
  const abort = explainWasmAbort(new Error('Aborted(). Build with -sASSERTIONS for more info.')) as Error;
  assert.match(abort.message, /^Aborted\(\): the WebAssembly backend aborted, almost always because its 4 GB heap is full; lower .*syn_steps or batch_syn/);
  assert.match((explainWasmAbort(new Error('memory access out of bounds')) as Error).message, /4 GB heap/);
  // A network's training is pointed at micro-batches, which keep its protocol.
  assert.match((explainWasmAbort(new Error('Aborted()'), 'eval') as Error).message, /eval\.micro_batch trains at the same batch in chunks/);
  assert.match((explainWasmAbort(new Error('Aborted()'), 'pretrain') as Error).message, /metadd\.pretrain\.micro_batch/);
  assert.doesNotMatch((explainWasmAbort(new Error('Aborted()'), 'distill') as Error).message, /micro_batch/);
  const other = new Error('distill: something else');
  assert.equal(explainWasmAbort(other), other);
});

test('among stages that unlock as much, the lowest seed goes first: one seed of every row before the next seed', async () => {
  const b = new DagBuilder('cpu', { name: 't', file: 't.yaml' });
  const a = b.add('dataset', { id: 'a' }, {}, 'a', false, 0);
  // Cells in sweep order, method-major: (A, seed 0), (A, seed 1), (B, seed 0), (B, seed 1).
  const cells = [
    ['A', 0],
    ['A', 1],
    ['B', 0],
    ['B', 1],
  ] as const;
  cells.forEach(([method, seed], i) => b.add('eval', { id: `${method}${seed}` }, { dataset: a }, `${method} seed ${seed}`, false, i));
  const plans = cells.map(([, seed], index) => ({ cell: { index, coords: {}, spec: { seed } } }) as unknown as Dag['cells'][number]);
  const exec = new FakeExecutor();
  await schedule({ nodes: b.nodes, order: b.order, cells: plans, reportKey: '' }, store(), exec, { jobs: 1 });
  assert.deepEqual(exec.started, ['a', 'A seed 0', 'B seed 0', 'A seed 1', 'B seed 1']);
});
