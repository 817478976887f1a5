import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Store } from '../src/store/store.js';
import { readHolder, thisProcess } from '../src/store/holder.js';
import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../src/store/npy.js';
import { sha256 } from '../src/store/hash.js';

async function waitFor(condition: () => Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!(await condition())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const fresh = (): Store => new Store(mkdtempSync(join(tmpdir(), 'metadd-store-')));

async function put(store: Store, key: string, files: Record<string, string>, replace = false): Promise<void> {
  const dir = store.newTmpDir(key);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  await store.commit(key, 'dataset', `label ${key}`, dir, replace);
}

test('commit writes a manifest with sizes and hashes, and verify catches tampering', async () => {
  const store = fresh();
  await put(store, 'k1', { 'a.txt': 'hello', 'sub/b.txt': 'world!' });
  assert.ok(store.has('k1'));
  const m = store.manifest('k1');
  assert.deepEqual(
    m.files.map((f) => [f.path, f.size, f.sha256]),
    [
      ['a.txt', 5, sha256('hello')],
      ['sub/b.txt', 6, sha256('world!')],
    ],
  );
  assert.equal(m.totalBytes, 11);
  assert.deepEqual(await store.verify('k1'), []);
  writeFileSync(join(store.objectDir('k1'), 'a.txt'), 'HELLO');
  assert.deepEqual(await store.verify('k1'), ['a.txt: content changed']);
});

test('a second commit of the same key keeps the first unless replacing', async () => {
  const store = fresh();
  await put(store, 'k', { 'v.txt': 'one' });
  await put(store, 'k', { 'v.txt': 'two' });
  assert.equal(store.manifest('k').files[0].sha256, sha256('one'));
  await put(store, 'k', { 'v.txt': 'three' }, true);
  assert.equal(store.manifest('k').files[0].sha256, sha256('three'));
});

test('gc removes what no run log references; --dry-run only lists it', async () => {
  const store = fresh();
  await put(store, 'keep', { 'x': '1' });
  await put(store, 'drop', { 'y': '22' });
  mkdirSync(join(store.root, 'runs', 'r1'), { recursive: true });
  writeFileSync(join(store.root, 'runs', 'r1', 'run.json'), JSON.stringify({ stages: [{ key: 'keep' }] }));
  const dry = await store.gc(true);
  assert.deepEqual(dry.objects.map((m) => m.key), ['drop']);
  assert.equal(dry.bytes, 2);
  assert.ok(store.has('drop'), 'dry run removes nothing');
  await store.gc(false);
  assert.ok(!store.has('drop'));
  assert.ok(store.has('keep'));
});

test('a held lock blocks others; released, it can be taken again', async () => {
  const store = fresh();
  const release = await store.tryLock('k');
  assert.ok(release);
  assert.equal(await store.tryLock('k'), undefined);
  assert.equal(await store.isLocked('k'), true);
  await release();
  assert.equal(await store.isLocked('k'), false);
  const again = await store.tryLock('k');
  assert.ok(again);
  await again();
});

test('npy round-trips every dtype and rejects broken files with the file name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metadd-npy-'));
  const cases = [
    new Float32Array([1.5, -2, 3e-8, 4, 5, 6]),
    new Float64Array([Math.PI, -1, 0, 1e300, 2, 3]),
    new Int32Array([1, -2, 3, 2147483647, 0, 9]),
    new Uint8Array([0, 1, 2, 253, 254, 255]),
  ];
  for (const data of cases) {
    const p = join(dir, `${data.constructor.name}.npy`);
    writeNpy(p, data, [2, 3]);
    const back = readNpy(p);
    assert.deepEqual(back.shape, [2, 3]);
    assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(data));
  }
  const good = encodeNpy(new Float32Array(4), [4]);
  assert.equal((good.length - 16) % 64, 0, 'header padded to a multiple of 64 bytes');
  assert.throws(() => decodeNpy(good.subarray(0, good.length - 3), 'x.npy'), /x\.npy: \.npy data holds 13 bytes, expected 16/);
  assert.throws(() => decodeNpy(Buffer.from('hello world'), 'y.npy'), /y\.npy: not a \.npy file/);
  assert.throws(() => encodeNpy(new Float32Array(3), [2, 2]), /holds 4 values but the data has 3/);
});

test('numpy reads our .npy files (when the project venv has numpy)', { skip: !existsSync('.venv/bin/python') && 'no .venv (run npm run setup:test)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'metadd-npy-'));
  writeNpy(join(dir, 'a.npy'), new Float32Array([1, 2, 3, 4, 5, 6]), [1, 2, 3]);
  writeNpy(join(dir, 'b.npy'), new Int32Array([7, -8]), [2]);
  const r = spawnSync('.venv/bin/python', ['-c', `import numpy as np; a=np.load('${dir}/a.npy'); b=np.load('${dir}/b.npy'); print(a.dtype, a.shape, a.sum(), b.dtype, b.tolist())`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'float32 (1, 2, 3) 21.0 int32 [7, -8]');
});

test('a released lock keeps its progress file only while the stage has saved progress to resume; gc removes what dead holders left', async () => {
  const store = fresh();
  const progress = (done: number) => ({ startedAt: '2026-12-05T22:00:00.000Z', updatedAt: '2026-12-05T22:30:00.000Z', done, total: 4 });
  // Stopped with saved progress (a checkpoint in scratch): how far it got stays for the next plan.
  const a = await store.tryLock('a');
  assert.ok(a);
  store.writeProgress('a', progress(3));
  writeFileSync(join(store.scratchDir('a'), 'latest.json'), '{}');
  await a();
  assert.equal(store.readStoppedProgress('a')?.done, 3);
  // Stopped before any checkpoint: nothing to resume, so nothing to keep.
  const b = await store.tryLock('b');
  assert.ok(b);
  store.writeProgress('b', progress(1));
  await b();
  assert.equal(store.readProgress('b'), undefined);
  // A finished stage's progress never outlives its lock.
  await put(store, 'e', { 'x': '1' });
  const e = await store.tryLock('e');
  assert.ok(e);
  store.writeProgress('e', progress(4));
  await e();
  assert.equal(store.readProgress('e'), undefined);
  assert.equal(store.readStoppedProgress('e'), undefined);
  // A killed holder (a pid that has exited, on this host) leaves its owner and progress files.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const locks = join(store.root, 'locks');
  writeFileSync(join(locks, 'c.owner.json'), JSON.stringify({ pid: Number(dead.stdout), host: hostname() }));
  store.writeProgress('c', progress(2));
  // A live holder's files stay.
  const d = await store.tryLock('d');
  assert.ok(d);
  store.writeProgress('d', progress(1));
  const dry = await store.gc(true);
  assert.deepEqual(dry.locks, [join(locks, 'c.owner.json'), join(locks, 'c.progress.json')]);
  assert.ok(existsSync(join(locks, 'c.owner.json')), 'a dry run removes nothing');
  await store.gc(false);
  assert.deepEqual(readdirSync(locks).filter((f) => f.endsWith('.json')).sort(), ['a.progress.json', 'd.owner.json', 'd.progress.json']);
  await d();
});

test('a holder on this host keeps its lock while alive, paused or not, however old its heartbeat; a gone one, or a reused pid, loses it at once', { skip: process.platform !== 'linux' && 'reads the process table from /proc' }, async () => {
  const store = fresh();
  const locks = join(store.root, 'locks');
  // A real holder: another process that takes the lock and keeps it.
  const storeModule = new URL('../src/store/store.js', import.meta.url).href;
  const holder = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const { Store } = await import(${JSON.stringify(storeModule)}); const r = await new Store(${JSON.stringify(store.root)}).tryLock('k'); process.stdout.write(r ? 'held' : 'refused'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((r) => holder.on('exit', r));
  try {
    const said = await new Promise<string>((r) => holder.stdout.once('data', (d: Buffer) => r(d.toString())));
    assert.equal(said, 'held');
    assert.equal(await store.isLocked('k'), true);
    assert.deepEqual(await store.lockState('k'), { held: true }, 'held, not paused');
    // Stopped by a signal (Ctrl-Z), it no longer refreshes the heartbeat: make it a minute old.
    holder.kill('SIGSTOP');
    await waitFor(async () => (await store.lockState('k')).pausedPid === holder.pid);
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(locks, 'k.lock'), old, old);
    assert.equal(await store.isLocked('k'), true, 'a paused holder still holds its lock');
    assert.equal(await store.tryLock('k'), undefined, 'a paused holder is not taken over');
    // Once it has ended, its lock is taken over at once.
    holder.kill('SIGKILL');
    await exited;
    assert.equal(await store.isLocked('k'), false);
    assert.deepEqual(await store.lockState('k'), { held: false });
    const taken = await store.tryLock('k');
    assert.ok(taken, 'a gone holder is taken over');
    await taken();
  } finally {
    holder.kill('SIGKILL');
  }
  // An owner file naming a live pid with another start time is a process that was given a dead holder's pid.
  mkdirSync(join(locks, 'r.lock'));
  writeFileSync(join(locks, 'r.owner.json'), JSON.stringify({ ...thisProcess(), started: (thisProcess().started ?? 0) + 1 }));
  assert.equal(await store.isLocked('r'), false);
  const reused = await store.tryLock('r');
  assert.ok(reused, 'a reused pid does not keep a dead holder\'s lock');
  await reused();
});

test('one process at a time takes over a gone holder\'s lock; a takeover left by a dead process is cleared after 10 s', { skip: process.platform !== 'linux' && 'reads the process table from /proc' }, async () => {
  const store = fresh();
  const locks = join(store.root, 'locks');
  mkdirSync(locks, { recursive: true });
  // A gone holder: its owner file names this pid with another start time (a process that has exited).
  const leaveGoneHolder = (key: string): void => {
    mkdirSync(join(locks, `${key}.lock`), { recursive: true });
    writeFileSync(join(locks, `${key}.owner.json`), JSON.stringify({ ...thisProcess(), started: (thisProcess().started ?? 0) + 1 }));
  };
  leaveGoneHolder('t');
  // Another process is taking it over right now (between removing the old lock and claiming the new one):
  // this one must neither take the key nor remove the lock that process may have just made.
  mkdirSync(join(locks, 't.takeover'));
  const lockDir = statSync(join(locks, 't.lock'));
  assert.equal(await store.tryLock('t'), undefined);
  assert.equal(statSync(join(locks, 't.lock')).ino, lockDir.ino, 'the lock was left alone');
  // That process died in the middle: after TAKEOVER_STALE_MS its takeover is cleared, and the key taken.
  const old = new Date(Date.now() - 11_000);
  utimesSync(join(locks, 't.takeover'), old, old);
  assert.equal(await store.tryLock('t'), undefined, 'the call that clears a dead takeover does not take the key itself');
  assert.equal(existsSync(join(locks, 't.takeover')), false);
  const taken = await store.tryLock('t');
  assert.ok(taken);
  assert.equal(readHolder(join(locks, 't.owner.json'))?.started, thisProcess().started, 'the owner file names the new holder');
  assert.equal(existsSync(join(locks, 't.takeover')), false, 'no takeover left behind');
  await taken();
});
