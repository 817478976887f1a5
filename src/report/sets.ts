import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pixelStats, type PixelStats } from '../distill/pixel-stats.js';
import { readNpy } from '../store/npy.js';
import type { CellData, SetData } from './collect.js';
import { csvField } from './csv.js';
import { median } from '../util/median.js';
import { readJsonIfReadable } from '../util/read-json.js';
import type { TableModel } from './table.js';

/**
 * What a report says about the image sets themselves, beside their accuracies: what they cost
 * (seconds per iteration, peak memory of the stage) and where their pixels lie against real ones (a
 * set whose contrast grows past anything real is what batch-norm students fail on; docs/results.md,
 * MTT with K = 200). Read from each set's meta.json.
 */
export interface SetFacts {
  iterations?: number;
  secondsPerIteration?: number;
  /** CPU seconds of the stage's process per iteration (sets written before it was recorded have none). */
  cpuSecondsPerIteration?: number;
  peakRssMb?: number;
  /** MTT's learned student learning rate. */
  learnedLr?: number;
  pixels?: PixelStats;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function isPixelStats(v: unknown): v is PixelStats {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  const nullable = (k: string): boolean => p[k] === null || num(p[k]) !== undefined;
  return ['mean', 'std', 'min', 'max'].every((k) => num(p[k]) !== undefined) && nullable('outside_real_range') && nullable('outside_distance');
}

/**
 * The facts of the set in `dir` from its meta.json (`meta`, as the artifact view holds it). Sets written
 * before meta.json recorded `pixels` get them from images.npy and the normalisation of their dataset
 * input (`datasetDir`), so older stores report them too.
 */
export function readSetFacts(meta: Record<string, unknown>, dir: string, datasetDir: string | undefined): SetFacts {
  let pixels = isPixelStats(meta.pixels) ? meta.pixels : undefined;
  const imagesFile = join(dir, 'images.npy');
  if (!pixels && existsSync(imagesFile)) {
    // An unreadable file leaves the statistics blank: the report still lays out every accuracy.
    const images = (() => {
      try {
        return readNpy(imagesFile);
      } catch {
        return undefined;
      }
    })();
    if (images?.dtype === 'float32' && images.shape.length === 4) {
      const norm = datasetDir ? readJsonIfReadable<Record<string, unknown>>(join(datasetDir, 'meta.json')) : undefined;
      const mean = Array.isArray(norm?.mean) ? (norm.mean as number[]) : undefined;
      const std = Array.isArray(norm?.std) ? (norm.std as number[]) : undefined;
      const zca = norm?.zca ? (norm.zca as { eps: number }) : null;
      pixels = pixelStats(images.data as Float32Array, images.shape as [number, number, number, number], { mean, std, zca });
    }
  }
  return {
    iterations: num(meta.iterations),
    secondsPerIteration: num(meta.seconds_per_iteration),
    cpuSecondsPerIteration: num(meta.cpu_seconds_per_iteration),
    peakRssMb: num(meta.peak_rss_mb),
    learnedLr: num(meta.learned_lr),
    pixels,
  };
}

function mean(values: number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

/** One row of the set-statistics table: the sets pooled into one row of an accuracy table. */
export interface SetStatsRow {
  labels: string[];
  /** Distinct image sets of the row, and how many have their facts read. */
  sets: number;
  read: number;
  /** Distinct iteration counts (a random subset: 0). */
  iterations: number[];
  /** Medians over the sets (timings and memory are noisy). */
  secondsPerIteration?: number;
  cpuSecondsPerIteration?: number;
  peakRssMb?: number;
  /** Means over the sets, and the range of the pixel std. */
  pixelStd?: { mean: number; min: number; max: number };
  pixelMin?: number;
  pixelMax?: number;
  outsideRealRange?: number;
  outsideDistance?: number;
  learnedLr?: number;
}

function uniqueSets(cells: CellData[], indices: number[]): SetData[] {
  const byInput = new Map<string, SetData>();
  for (const i of indices) {
    const set = cells[i]?.set;
    if (set && !byInput.has(set.input)) byInput.set(set.input, set);
  }
  return [...byInput.values()];
}

/** The set statistics of every result row of `table` (an accuracy table), in its row order. */
export function setStatsRows(table: TableModel, cells: CellData[]): SetStatsRow[] {
  const out: SetStatsRow[] = [];
  for (const row of table.rows) {
    if (row.kind !== 'result') continue;
    const sets = uniqueSets(cells, row.cells);
    const facts = sets.map((s) => s.facts).filter((f): f is SetFacts => f !== undefined);
    const values = (pick: (f: SetFacts) => number | undefined): number[] => facts.map(pick).filter((v): v is number => v !== undefined);
    const stds = values((f) => f.pixels?.std);
    const stdMean = mean(stds);
    out.push({
      labels: row.labels,
      sets: sets.length,
      read: facts.length,
      iterations: [...new Set(values((f) => f.iterations))].sort((a, b) => a - b),
      secondsPerIteration: median(values((f) => (f.iterations ? f.secondsPerIteration : undefined))),
      cpuSecondsPerIteration: median(values((f) => (f.iterations ? f.cpuSecondsPerIteration : undefined))),
      peakRssMb: median(values((f) => f.peakRssMb)),
      pixelStd: stdMean === undefined ? undefined : { mean: stdMean, min: Math.min(...stds), max: Math.max(...stds) },
      pixelMin: mean(values((f) => f.pixels?.min)),
      pixelMax: mean(values((f) => f.pixels?.max)),
      outsideRealRange: mean(values((f) => f.pixels?.outside_real_range ?? undefined)),
      outsideDistance: mean(values((f) => f.pixels?.outside_distance ?? undefined)),
      learnedLr: mean(values((f) => f.learnedLr)),
    });
  }
  return out;
}

/** The table's header and text cells; '' where a value is not known. */
export function setStatsCells(table: TableModel, rows: SetStatsRow[]): { header: string[]; cells: string[][] } {
  const fixed = (v: number | undefined, digits: number): string => (v === undefined ? '' : v.toFixed(digits));
  // Sets written before CPU time was recorded have none: the column appears once some set has it.
  const withCpu = rows.some((r) => r.cpuSecondsPerIteration !== undefined);
  const header = [...table.rowHeaders, 'sets', 'iterations', 's / iteration', ...(withCpu ? ['CPU s / iteration'] : []), 'peak RSS (MB)', 'pixel std', 'pixel min / max', 'outside real range (%)', 'mean distance outside'];
  const withLr = rows.some((r) => r.learnedLr !== undefined);
  if (withLr) header.push('learned lr');
  const body = rows.map((r) => {
    const std = r.pixelStd ? (r.pixelStd.max - r.pixelStd.min >= 0.005 ? `${fixed(r.pixelStd.mean, 2)} (${fixed(r.pixelStd.min, 2)}–${fixed(r.pixelStd.max, 2)})` : fixed(r.pixelStd.mean, 2)) : '';
    const cells = [
      ...r.labels,
      r.read === r.sets ? String(r.sets) : `${r.read} of ${r.sets}`,
      r.iterations.length === 0 ? '' : r.iterations.length === 1 ? String(r.iterations[0]) : `${r.iterations[0]}–${r.iterations[r.iterations.length - 1]}`,
      fixed(r.secondsPerIteration, 2),
      ...(withCpu ? [fixed(r.cpuSecondsPerIteration, 2)] : []),
      fixed(r.peakRssMb, 0),
      std,
      r.pixelMin === undefined || r.pixelMax === undefined ? '' : `${fixed(r.pixelMin, 2)} / ${fixed(r.pixelMax, 2)}`,
      r.outsideRealRange === undefined ? '' : (100 * r.outsideRealRange).toFixed(1),
      fixed(r.outsideDistance, 3),
    ];
    if (withLr) cells.push(r.learnedLr === undefined ? '' : r.learnedLr.toPrecision(3));
    return cells;
  });
  return { header, cells: body };
}

/** Why the table is there and how to read it (under it in every format). */
export const SET_STATS_NOTE =
  'Per row of the first table, over its distinct image sets: median seconds per distillation iteration (wall time, and where recorded the CPU time of the stage\'s process, which is the cost when other work shares the cores) and peak RSS of the stage that made the set (the last stage: a MetaDD arm counts its own iterations); ' +
  "mean pixel std (range over sets), min and max, in the dataset's normalised units; the share of pixels outside the range real pixels take (a background pixel a hair below black counts), " +
  'and the mean over all pixels of the distance beyond that range (normalised units; what separates a small excursion from a drift). Real images: std 1, nothing outside.';

/** sets.csv: one line per distinct image set, with the swept coordinates of the first cell that uses it. */
export function setsCsv(cells: CellData[]): string {
  const paths: string[] = [];
  for (const c of cells) for (const p of Object.keys(c.coords)) if (!paths.includes(p)) paths.push(p);
  const header = [...paths, 'kind', 'key', 'iterations', 'seconds_per_iteration', 'cpu_seconds_per_iteration', 'peak_rss_mb', 'learned_lr', 'pixel_mean', 'pixel_std', 'pixel_min', 'pixel_max', 'pixel_outside_real_range', 'pixel_outside_distance'];
  const lines = [header.join(',')];
  const seen = new Set<string>();
  for (const c of cells) {
    if (seen.has(c.set.input)) continue;
    seen.add(c.set.input);
    const f = c.set.facts;
    const p = f?.pixels;
    lines.push(
      [...paths.map((k) => c.coords[k]), c.set.kind, c.set.key, f?.iterations, f?.secondsPerIteration, f?.cpuSecondsPerIteration, f?.peakRssMb, f?.learnedLr, p?.mean, p?.std, p?.min, p?.max, p?.outside_real_range, p?.outside_distance]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
