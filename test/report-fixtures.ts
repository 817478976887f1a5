import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { ArtifactView, StageKind } from '../src/stages/contract.js';
import type { ArtifactSource, ReportCellParam, ReportParams } from '../src/report/collect.js';
import { encodePng, renderHeatmapOverlay, renderImageGrid } from '../src/report/png.js';
import type { Report } from '../src/spec/types.generated.js';

/**
 * Fixture stores for the report tests: artifacts written as docs/artifacts.md lays them out
 * (objects/<k0k1>/<key>/ with manifest.json, stage.json, records.jsonl, result.json, grid.png),
 * without tfjs or any stage running.
 */
const created: string[] = [];

/** A temporary folder removed by removeFixtures(). */
export function tempDir(prefix = 'metadd-report-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  created.push(d);
  return d;
}

/** Removes every folder the fixtures created (call from an `after` hook). */
export function removeFixtures(): void {
  for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
}

export class FixtureStore {
  readonly root: string;

  constructor(root?: string) {
    this.root = root ?? tempDir();
  }

  has(key: string): boolean {
    return existsSync(join(this.dir(key), 'manifest.json'));
  }

  dir(key: string): string {
    return join(this.root, 'objects', key.slice(0, 2), key);
  }

  put(key: string, kind: StageKind, files: Record<string, string | Buffer>, inputs: Record<string, string> = {}, params: Record<string, unknown> = {}): ArtifactView {
    const dir = this.dir(key);
    mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
    writeFileSync(join(dir, 'stage.json'), JSON.stringify({ key, kind, params, inputs }));
    const manifest = { key, kind, label: `${kind} ${key.slice(0, 8)}`, createdAt: '2025-01-01T00:00:00.000Z', totalBytes: 0, files: [] };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    return { key, kind, dir, meta: {} };
  }
}

export function fakeKey(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

/** A small grid.png: `classes` rows of `ipc` 8x8 grayscale tiles with a per-class pattern. */
export function gridPng(classes: number, ipc: number): Buffer {
  const n = classes * ipc;
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let p = 0; p < 64; p++) images[i * 64 + p] = ((p * (labels[i] + 1) + i) % 17) / 17;
  }
  return encodePng(renderImageGrid(images, [n, 1, 8, 8], { mean: [0], std: [1], labels, scale: 2 }));
}

/** A CAM overlay picture as the metadd stage would write it: two images, two auxiliary maps each. */
export function camPng(): Buffer {
  const images = new Float32Array(2 * 64).map((_, i) => (i % 9) / 9);
  const maps = new Float32Array(2 * 2 * 64).map((_, i) => (i % 64) / 63);
  return encodePng(renderHeatmapOverlay(images, [2, 1, 8, 8], maps, { mean: [0], std: [1], mapsPerImage: 2, scale: 2 }));
}

export function evalResultJson(arch: string, accuracies: number[], epochs = 4): string {
  const mean = accuracies.reduce((a, b) => a + b, 0) / accuracies.length;
  return JSON.stringify({
    arch: { name: arch },
    set: 'fixture',
    accuracies,
    mean,
    std: 0,
    n: accuracies.length,
    report_epoch: 'final',
    curves: {
      train_loss: accuracies.map((a) => Array.from({ length: epochs }, (_, e) => (2.3 - a) / (e + 1))),
      test_accuracy: accuracies.map((a) => Array.from({ length: epochs }, (_, e) => (a * (e + 1)) / epochs)),
      test_epochs: accuracies.map(() => Array.from({ length: epochs }, (_, e) => e + 1)),
    },
  });
}

export function metricRecords(key: string, values: number[], firstStep = 0): string {
  return values.map((value, i) => `${JSON.stringify({ type: 'metric', key, value, step: firstStep + i, timestamp: 0 })}\n`).join('');
}

export interface SweepCell {
  facts: Record<string, unknown>;
  coords: Record<string, unknown>;
  /** Accuracies per architecture; undefined = that evaluation is missing from the store. */
  results: Record<string, number[] | undefined>;
  /** Write the image set (grid, curves); default true. */
  set?: boolean;
  cams?: boolean;
  /** The stage that made the set (default distill) and its parameters (stage.json). */
  setKind?: StageKind;
  setParams?: Record<string, unknown>;
  /** More files of the set artifact (meta.json, images.npy) and its stage.json inputs (a dataset key). */
  setFiles?: Record<string, string | Buffer>;
  setInputs?: Record<string, string>;
}

/**
 * Writes a sweep into the store and returns the report stage's parameters and an artifact source
 * over the store (inputs named set<i> and eval<i>_<j> like src/dag/compile.ts names them).
 */
export function writeSweep(store: FixtureStore, name: string, archs: string[], cells: SweepCell[], report: Report = {}) {
  const inputs: Record<string, string> = {};
  const params: ReportParams = { name, description: `Fixture sweep ${name}.`, report, cells: [] };
  cells.forEach((c, i) => {
    const setKey = fakeKey(`${name}-set-${i}`);
    inputs[`set${i}`] = setKey;
    if (c.set !== false) {
      const files: Record<string, string | Buffer> = {
        'grid.png': gridPng(3, Number(c.facts['distill.ipc'] ?? 1)),
        'records.jsonl': metricRecords('distill.loss', [4, 3, 2.5, 2.2, 2.1].map((v) => v + i * 0.1)),
      };
      if (c.cams) files['cams/cam_overlay.png'] = camPng();
      store.put(setKey, c.setKind ?? 'distill', { ...files, ...c.setFiles }, c.setInputs ?? {}, c.setParams ?? {});
    }
    const evals: ReportCellParam['evals'] = archs.map((arch, j) => {
      const input = `eval${i}_${j}`;
      const key = fakeKey(`${name}-eval-${i}-${j}`);
      inputs[input] = key;
      const acc = c.results[arch];
      if (acc) store.put(key, 'eval', { 'result.json': evalResultJson(arch, acc) }, { images: setKey });
      return { arch, input };
    });
    params.cells.push({ coords: c.coords, facts: c.facts, set: `set${i}`, evals });
  });
  const source: ArtifactSource = {
    artifact: (input) => {
      const key = inputs[input];
      if (!key || !existsManifest(store, key)) return undefined;
      const kind = (JSON.parse(readFileSync(join(store.dir(key), 'manifest.json'), 'utf8')) as { kind: StageKind }).kind;
      // As Store.view: the artifact's meta.json, or {} without one.
      const metaFile = join(store.dir(key), 'meta.json');
      const meta = existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, unknown>) : {};
      return { key, kind, dir: store.dir(key), meta };
    },
    artifactDir: (key) => (existsManifest(store, key) ? store.dir(key) : undefined),
  };
  return { params, source, inputs };
}

function existsManifest(store: FixtureStore, key: string): boolean {
  return existsSync(join(store.dir(key), 'manifest.json'));
}
