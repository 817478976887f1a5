import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { PNG } from 'pngjs';
import type { StageContext } from '../src/stages/contract.js';
import type { TrackRecord } from '../src/tracking/records.js';
import { createRng } from '../src/util/rng.js';

/** A temp folder removed when the test file finishes. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `metadd-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Assert that `fn` throws an error whose message names `file` and matches `detail`. */
export function throwsNaming(fn: () => unknown, file: string, detail: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Error, 'expected an Error');
    assert.ok(err.message.includes(file), `message should name ${file}: ${err.message}`);
    assert.match(err.message, detail);
    return true;
  });
}

/** A PNG of w x h pixels; `pixel(x, y)` gives [v] (grayscale file) or [r, g, b] (RGB file). */
export function pngBytes(w: number, h: number, channels: 1 | 3, pixel: (x: number, y: number) => number[]): Buffer {
  const png = new PNG({ width: w, height: h });
  const data = Buffer.alloc(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = pixel(x, y);
      for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = v[c];
    }
  }
  png.data = data;
  const colorType = channels === 1 ? 0 : 2;
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false });
}

/** A StageContext that records what the stage tracks, for running a stage outside the worker. */
export function fakeContext<P>(params: P, outDir: string): { ctx: StageContext<P>; records: TrackRecord[]; progress: [number, number][] } {
  const records: TrackRecord[] = [];
  const progress: [number, number][] = [];
  const ctx: StageContext<P> = {
    key: 'test-key',
    kind: 'dataset',
    params,
    inputs: {},
    outDir,
    scratchDir: outDir,
    rng: createRng('test'),
    progress: { update: (done, total) => progress.push([done, total]) },
    track: {
      param: (key, value) => records.push({ type: 'param', key, value: String(value) }),
      metric: (key, value, step = 0) => records.push({ type: 'metric', key, value, step, timestamp: 0 }),
      tag: (key, value) => records.push({ type: 'tag', key, value }),
      artifact: (path) => records.push({ type: 'artifact', path }),
    },
    backend: 'none',
    signal: new AbortController().signal,
    log: () => undefined,
  };
  return { ctx, records, progress };
}
