import { copyFileSync, mkdirSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { lineChart, type Scene, type Series } from './chart.js';
import { uniqueEvals, type CellData, type CurvePoint } from './collect.js';
import { archHeader, pathLabel, type ReportConfig } from './config.js';
import { sceneToPdf } from './pdf.js';
import { encodePng } from './png.js';
import { sceneToRaster } from './raster.js';
import { sceneToSvg } from './svg.js';
import type { ResultRow, TableModel } from './table.js';

/**
 * Metrics a stage logs once, about its result (its speed, memory, the pixels of its set): a MetaDD set's
 * "curve" of them would join its base stage's value to its own. The set-statistics table shows them.
 */
const STAGE_SUMMARY_METRIC = /^(?:(?:cpu_)?seconds_per_iteration|peak_rss_mb|(?:base\.)?pixel_[a-z_]+)$/;

export interface Figure {
  id: string;
  section: 'sets' | 'cams' | 'accuracy' | 'curves';
  title: string;
  caption: string;
  /** Paths relative to the report folder. */
  png: string;
  svg?: string;
  pdf?: string;
  /** CSS width for the HTML page (plot PNGs have 2 pixels per CSS pixel). */
  displayWidth?: number;
}

export interface FigureResult {
  figures: Figure[];
  notes: string[];
}

const PLOT_SCALE = 2;

export function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'x';
}

function uniqueId(base: string, used: Set<string>): string {
  let id = base;
  for (let i = 2; used.has(id); i++) id = `${base}-${i}`;
  used.add(id);
  return id;
}

/** Writes a scene as PNG (HTML, Markdown), SVG and PDF (LaTeX) under plots/. */
function writeScene(outDir: string, id: string, scene: Scene): Pick<Figure, 'png' | 'svg' | 'pdf' | 'displayWidth'> {
  mkdirSync(join(outDir, 'plots'), { recursive: true });
  const png = `plots/${id}.png`;
  const svg = `plots/${id}.svg`;
  const pdf = `plots/${id}.pdf`;
  writeFileSync(join(outDir, png), encodePng(sceneToRaster(scene, PLOT_SCALE), { filterType: 1 }));
  writeFileSync(join(outDir, svg), sceneToSvg(scene));
  writeFileSync(join(outDir, pdf), sceneToPdf(scene));
  return { png, svg, pdf, displayWidth: scene.width };
}

/** Width of a PNG from its IHDR chunk (bytes 16..19), or undefined for a file that is not a PNG. */
export function pngWidth(file: string): number | undefined {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(24);
    if (readSync(fd, head, 0, 24, 0) < 24 || head.toString('latin1', 12, 16) !== 'IHDR') return undefined;
    return head.readUInt32BE(16);
  } finally {
    closeSync(fd);
  }
}

/** Small pictures (a 28 px image set at IPC 1) are shown enlarged by a whole factor, at most 4. */
function pictureWidth(file: string): number | undefined {
  const w = pngWidth(file);
  return w === undefined ? undefined : w * Math.max(1, Math.min(4, Math.floor(360 / w)));
}

function rowTitle(row: ResultRow): string {
  return row.labels.join(' · ');
}

function seedOf(cell: CellData): unknown {
  return cell.facts.seed ?? cell.coords.seed;
}

/** Cells whose sets are pictured: the first cell with a set of each row ('row'), or every distinct set ('all'). */
function pictureCells(mode: 'row' | 'all' | 'none', rows: ResultRow[], cells: CellData[]): { cell: CellData; row: ResultRow }[] {
  const out: { cell: CellData; row: ResultRow }[] = [];
  const seenSets = new Set<string>();
  for (const row of rows) {
    const candidates = row.cells.map((i) => cells[i]).filter((c) => c.set.dir);
    for (const cell of mode === 'all' ? candidates : candidates.slice(0, 1)) {
      if (seenSets.has(cell.set.input)) continue;
      seenSets.add(cell.set.input);
      out.push({ cell, row });
    }
  }
  return out;
}

/** Averages curves point-wise by step (seeds of one row log at the same steps). */
function meanCurve(curves: CurvePoint[][]): CurvePoint[] {
  const byStep = new Map<number, number[]>();
  for (const c of curves) for (const p of c) byStep.set(p.step, [...(byStep.get(p.step) ?? []), p.value]);
  return [...byStep].sort((a, b) => a[0] - b[0]).map(([step, v]) => ({ step, value: v.reduce((a, b) => a + b, 0) / v.length }));
}

function limit(series: Series[], max: number, what: string, notes: string[]): Series[] {
  if (series.length <= max) return series;
  notes.push(`${what}: ${series.length - max} of ${series.length} lines are left out (report.figures.max_series = ${max}).`);
  return series.slice(0, max);
}

/**
 * Every picture of the report: image grids and CAM overlays copied from the image sets, accuracy
 * against IPC per architecture, distillation loss curves and evaluation training curves.
 */
export function buildFigures(cfg: ReportConfig, tables: TableModel[], cells: CellData[], outDir: string): FigureResult {
  const figures: Figure[] = [];
  const notes: string[] = [];
  const used = new Set<string>();
  const main = tables[0];
  const rows = (main?.rows ?? []).filter((r): r is ResultRow => r.kind === 'result');
  const f = cfg.figures;

  const pictured = pictureCells(f.image_grids === 'none' ? 'row' : f.image_grids, rows, cells);
  if (f.image_grids !== 'none' || f.cams) mkdirSync(join(outDir, 'images'), { recursive: true });
  for (const { cell, row } of pictured) {
    const seed = seedOf(cell);
    const title = `${rowTitle(row)}${seed === undefined || seed === null ? '' : ` (seed ${String(seed)})`}`;
    if (f.image_grids !== 'none' && cell.set.grid) {
      const id = uniqueId(`set-${slug(title)}`, used);
      const png = `images/${id}.png`;
      copyFileSync(cell.set.grid, join(outDir, png));
      figures.push({ id, section: 'sets', title, caption: `Image set ${title}: one row per class.`, png, displayWidth: pictureWidth(cell.set.grid) });
    }
    if (f.cams) {
      for (const cam of cell.set.cams) {
        const name = basename(cam, '.png');
        const id = uniqueId(`${slug(name)}-${slug(title)}`, used);
        const png = `images/${id}.png`;
        copyFileSync(cam, join(outDir, png));
        figures.push({ id, section: 'cams', title: `${title}: ${name}`, caption: `Class activation maps of the auxiliary networks (${name}) on ${title}.`, png, displayWidth: pictureWidth(cam) });
      }
    }
  }

  const xPath = f.accuracy_vs;
  for (const table of tables) {
    const xi = xPath ? table.rowPaths.indexOf(xPath) : -1;
    if (!xPath || xi < 0) continue;
    const results = table.rows.filter((r): r is ResultRow => r.kind === 'result');
    const xs = new Set(results.map((r) => r.key[xi]).filter((v) => typeof v === 'number'));
    if (xs.size < 2) continue;
    const prefix = tables.length > 1 ? `${table.name}-` : '';
    for (const col of table.columns) {
      const bySeries = new Map<string, Series>();
      for (const r of results) {
        const x = r.key[xi];
        const s = r.entries[col.arch]?.stat;
        if (typeof x !== 'number' || !s) continue;
        const label = r.labels.filter((_, i) => i !== xi).join(' / ') || 'all';
        const series = bySeries.get(label) ?? { label, points: [] };
        series.points.push({ x, y: s.mean, err: s.std });
        bySeries.set(label, series);
      }
      const series = limit([...bySeries.values()], f.max_series, `Accuracy vs ${xPath} (${col.arch})`, notes);
      const id = uniqueId(`${prefix}acc-vs-${slug(xPath.split('.').pop() ?? xPath)}-${slug(col.arch)}`, used);
      const title = `${col.header}: test accuracy vs ${pathLabel(cfg, xPath)}`;
      const scene = lineChart({ title, xLabel: pathLabel(cfg, xPath), yLabel: 'test accuracy (%)', series, xScale: 'auto', xTicksAtData: true, yPercent: true });
      figures.push({ id, section: 'accuracy', title, caption: `Test accuracy (mean ± sample std) of ${col.header} against ${pathLabel(cfg, xPath)}, one line per row of table '${table.name}'.`, ...writeScene(outDir, id, scene) });
    }
  }

  if (f.loss_curves) {
    const keys: string[] = [];
    for (const r of rows) for (const i of r.cells) for (const k of Object.keys(cells[i].set.curves)) if (!keys.includes(k) && !STAGE_SUMMARY_METRIC.test(k)) keys.push(k);
    for (const key of keys) {
      const series: Series[] = [];
      for (const r of rows) {
        const curves = r.cells.map((i) => cells[i].set.curves[key]).filter((c): c is CurvePoint[] => c !== undefined && c.length > 1);
        if (curves.length === 0) continue;
        series.push({ label: rowTitle(r), points: meanCurve(curves).map((p) => ({ x: p.step, y: p.value })) });
      }
      if (series.length === 0) continue;
      const id = uniqueId(`curve-${slug(key)}`, used);
      const title = `Distillation: ${key}`;
      const scene = lineChart({ title, xLabel: 'iteration', yLabel: key, series: limit(series, f.max_series, title, notes), markers: false, yScale: 'auto' });
      figures.push({ id, section: 'curves', title, caption: `'${key}' over the iterations of the distillation (and MetaDD) stages, mean over seeds.`, ...writeScene(outDir, id, scene) });
    }
    for (const col of main?.columns ?? []) {
      const loss: Series[] = [];
      const acc: Series[] = [];
      for (const r of rows) {
        const evals = uniqueEvals(r.cells.flatMap((i) => cells[i].evals.filter((e) => e.arch === col.arch)));
        const lossCurves = evals.flatMap((e) => e.trainLoss ?? []).filter((c) => c.length > 1);
        if (lossCurves.length > 0) {
          const mean = meanCurve(lossCurves.map((c) => c.map((value, j) => ({ step: j + 1, value }))));
          loss.push({ label: rowTitle(r), points: mean.map((p) => ({ x: p.step, y: p.value })) });
        }
        const accCurves = evals.flatMap((e) => e.testAccuracy ?? []).filter((c) => c.values.length > 1);
        if (accCurves.length > 0) {
          const mean = meanCurve(accCurves.map((c) => c.values.map((value, j) => ({ step: c.epochs[j], value }))));
          acc.push({ label: rowTitle(r), points: mean.map((p) => ({ x: p.step, y: p.value })) });
        }
      }
      const header = archHeader(cfg, col.arch);
      if (loss.length > 0) {
        const id = uniqueId(`eval-loss-${slug(col.arch)}`, used);
        const title = `${header}: training loss on the image sets`;
        const scene = lineChart({ title, xLabel: 'epoch', yLabel: 'training loss', series: limit(loss, f.max_series, title, notes), markers: false, yScale: 'auto' });
        figures.push({ id, section: 'curves', title, caption: `Training loss of the ${header} evaluation models, mean over models and seeds.`, ...writeScene(outDir, id, scene) });
      }
      if (acc.length > 0) {
        const id = uniqueId(`eval-acc-${slug(col.arch)}`, used);
        const title = `${header}: test accuracy during training`;
        const scene = lineChart({ title, xLabel: 'epoch', yLabel: 'test accuracy (%)', series: limit(acc, f.max_series, title, notes), markers: false, yPercent: true });
        figures.push({ id, section: 'curves', title, caption: `Test accuracy of the ${header} evaluation models while they train, mean over models and seeds.`, ...writeScene(outDir, id, scene) });
      }
    }
  }
  return { figures, notes };
}
