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
  const p: StageProgress = { startedAt: iso(0), updatedAt: iso(60), done: 400, total: 1000, paceDone: 300, paceAt: iso(10) };
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
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(0), updatedAt: iso(1), done: 5, total: 100, message: 'a', paceDone: 5, paceAt: iso(1) });
  now += 1500;
  record(20, 100, 'b');
  assert.equal(store.readProgress('k')?.done, 5, 'within two seconds of the last write: not written');
  now += 600;
  record(30, 100);
  const p = store.readProgress('k');
  assert.equal(p?.done, 30);
  assert.equal(p?.message, undefined);
  assert.equal(p?.paceDone, 5);
  now += 100;
  record(100, 100);
  assert.equal(store.readProgress('k')?.done, 100, 'the last report is always written');
});

test('an attempt that resumes saved progress starts from where the last attempt stopped, until its first report', async () => {
  const store = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  const release = await store.tryLock('k');
  assert.ok(release);
  store.writeProgress('k', { startedAt: iso(0), updatedAt: iso(600), done: 2990, total: 4000, message: 'model 2/2 epoch 495', paceDone: 0, paceAt: iso(1) });
  writeFileSync(join(store.scratchDir('k'), 'checkpoint.json'), '{}');
  await release();
  let now = T0 + 3_600_000;
  const record = liveProgressWriter(store, 'k', () => now);
  // The old attempt's message and pace are not this attempt's.
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(3600), updatedAt: iso(3600), done: 2990, total: 4000 });
  assert.equal(describeLiveProgress(store.readProgress('k') as StageProgress, now + 5000), '2990/4000; 5 s in');
  now += 1000;
  record(2980, 4000, 'model 2/2 epoch 490');
  assert.deepEqual(store.readProgress('k'), { startedAt: iso(3600), updatedAt: iso(3601), done: 2980, total: 4000, message: 'model 2/2 epoch 490', paceDone: 2980, paceAt: iso(3601) });
  // Nothing saved to resume from: a fresh start, whatever file a killed attempt left.
  const other = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  other.writeProgress('k', { startedAt: iso(0), updatedAt: iso(600), done: 2990, total: 4000 });
  liveProgressWriter(other, 'k', () => now);
  assert.deepEqual(other.readProgress('k'), { startedAt: iso(3601), updatedAt: iso(3601), done: 0, total: 0 });
});

test('the pace counts over the last five to ten minutes, so a pause stops counting once it is that far back', () => {
  const store = new Store(mkdtempSync(join(tmpdir(), 'metadd-live-')));
  let now = T0;
  const record = liveProgressWriter(store, 'k', () => now);
  const at = (seconds: number, done: number): StageProgress => {
    now = T0 + seconds * 1000;
    record(done, 1000);
    return store.readProgress('k') as StageProgress;
  };
  at(1, 0);
  assert.equal(secondsLeft(at(61, 100), now), 540, 'the first minute: 100 units a minute, 900 left');
  // Paused for nine minutes (SIGSTOP): the first report after it still counts from the start.
  const resumed = at(601, 101);
  assert.deepEqual([resumed.paceDone, resumed.paceAt], [0, iso(1)]);
  assert.equal(secondsLeft(resumed, now), (899 * 600) / 101);
  at(661, 201);
  // Five minutes after the candidate taken at 601 s it becomes the start: 400 units in 300 s.
  const later = at(901, 501);
  assert.deepEqual([later.paceDone, later.paceAt], [101, iso(601)]);
  assert.equal(secondsLeft(later, now), (499 * 300) / 400);
  // Until the next five minutes have passed, the pace keeps counting from there.
  assert.deepEqual([at(1199, 900).paceDone, store.readProgress('k')?.paceAt], [101, iso(601)]);
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
