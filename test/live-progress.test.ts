import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLiveProgress, leftFraction, liveProgressWriter, secondsLeft } from '../src/exec/live-progress.js';
import { Store, type StageProgress } from '../src/store/store.js';

const T0 = Date.parse('2026-12-05T10:00:00.000Z');
const iso = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

test('the pace counts from the first report of this attempt, so a resumed stage is not credited with earlier work', () => {
  // Resumed at 300 of 1000 units; 100 more in 50 s: 2 units per second, 600 left.
  const p: StageProgress = { startedAt: iso(0), updatedAt: iso(60), done: 400, total: 1000, firstDone: 300, firstAt: iso(10) };
  assert.equal(secondsLeft(p, T0 + 60_000), 300);
  // Read 20 s after the file was written: 20 s of that already passed.
  assert.equal(secondsLeft(p, T0 + 80_000), 280);
  assert.equal(leftFraction(p), 0.6);
  assert.equal(describeLiveProgress({ ...p, message: 'epoch 40' }, T0 + 80_000), '400/1000 epoch 40; 80 s in, about 5 min left at its pace');
  // No pace before the stage has moved past its first report, and none before any report.
  assert.equal(secondsLeft({ ...p, done: 300 }, T0 + 60_000), undefined);
  assert.equal(describeLiveProgress({ ...p, done: 300 }, T0 + 60_000), '300/1000; 60 s in');
  const fresh: StageProgress = { startedAt: iso(0), updatedAt: iso(0), done: 0, total: 0 };
  assert.equal(leftFraction(fresh), undefined);
  assert.equal(describeLiveProgress(fresh, T0 + 5000), 'starting; 5 s in');
});

test('the worker writes its start at once, then at most every two seconds, and always the last report', () => {
  const store = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  let now = T0;
  const record = liveProgressWriter(store, 'k', () => now);
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(0), updatedAt: iso(0), done: 0, total: 0 });
  now += 1000;
  record(5, 100, 'a');
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(0), updatedAt: iso(1), done: 5, total: 100, message: 'a', firstDone: 5, firstAt: iso(1) });
  now += 1500;
  record(20, 100, 'b');
  assert.equal(store.readProgress('k')?.done, 5, 'within two seconds of the last write: not written');
  now += 600;
  record(30, 100);
  const p = store.readProgress('k');
  assert.equal(p?.done, 30);
  assert.equal(p?.message, undefined);
  assert.equal(p?.firstDone, 5);
  now += 100;
  record(100, 100);
  assert.equal(store.readProgress('k')?.done, 100, 'the last report is always written');
});

test('an attempt that resumes saved progress starts from where the last attempt stopped, until its first report', async () => {
  const store = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  const release = await store.tryLock('k');
  assert.ok(release);
  store.writeProgress('k', { startedAt: iso(0), updatedAt: iso(600), done: 2990, total: 4000, message: 'model 2/2 epoch 495', firstDone: 0, firstAt: iso(1) });
  writeFileSync(join(store.scratchDir('k'), 'checkpoint.json'), '{}');
  await release();
  let now = T0 + 3_600_000;
  const record = liveProgressWriter(store, 'k', () => now);
  // The old attempt's message and pace are not this attempt's.
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(3600), updatedAt: iso(3600), done: 2990, total: 4000 });
  assert.equal(describeLiveProgress(store.readProgress('k') as StageProgress, now + 5000), '2990/4000; 5 s in');
  now += 1000;
  record(2980, 4000, 'model 2/2 epoch 490');
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(3600), updatedAt: iso(3601), done: 2980, total: 4000, message: 'model 2/2 epoch 490', firstDone: 2980, firstAt: iso(3601) });
  // Nothing saved to resume from: a fresh start, whatever file a killed attempt left.
  const other = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  other.writeProgress('k', { startedAt: iso(0), updatedAt: iso(600), done: 2990, total: 4000 });
  liveProgressWriter(other, 'k', () => now);
  assert.deepEqual(other.readProgress('k'), { startedAt: iso(3601), updatedAt: iso(3601), done: 0, total: 0 });
});

test('a progress file that cannot be written does not fail the stage', () => {
  // Only the method the writer calls: a store whose disk is full.
  const full = {
    readStoppedProgress: () => undefined,
    writeProgress: () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    },
  } as unknown as Store;
  const record = liveProgressWriter(full, 'k');
  assert.doesNotThrow(() => record(1, 2, 'x'));
  assert.doesNotThrow(() => record(2, 2));
});
