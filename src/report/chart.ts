import { textWidth } from './font.js';

/**
 * Plots without a plotting library (none is installed): a chart is laid out once as a Scene of
 * simple shapes in CSS pixels (origin top left), which svg.ts, pdf.ts and raster.ts draw.
 */
export type Point = [number, number];

export type Shape =
  | { type: 'polyline'; points: Point[]; stroke: string; width: number }
  | { type: 'polygon'; points: Point[]; fill: string }
  | { type: 'circle'; cx: number; cy: number; r: number; fill: string }
  | { type: 'rect'; x: number; y: number; w: number; h: number; fill?: string; stroke?: string; strokeWidth?: number }
  | {
      type: 'text';
      x: number;
      y: number;
      text: string;
      size: number;
      color: string;
      anchor: 'start' | 'middle' | 'end';
      /** Vertical position of (x, y) on the text: its middle, its top, or its baseline. */
      valign: 'middle' | 'top' | 'baseline';
      /** Rotated 90 degrees counter-clockwise (reads bottom to top). */
      vertical?: boolean;
      bold?: boolean;
    };

export interface Scene {
  width: number;
  height: number;
  background: string;
  title: string;
  shapes: Shape[];
}

export interface SeriesPoint {
  x: number;
  y: number;
  /** Half-length of the error bar (e.g. the std). */
  err?: number;
}

export interface Series {
  label: string;
  points: SeriesPoint[];
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Default linear; 'auto': log when every value is positive and spans a decade (x) or more than 50x (y). */
  xScale?: 'linear' | 'log' | 'auto';
  yScale?: 'linear' | 'log' | 'auto';
  /** Put the x ticks at the data's x values (IPC 1, 10, 50) instead of round numbers. */
  xTicksAtData?: boolean;
  markers?: boolean;
  /** Y values are fractions shown as percentages. */
  yPercent?: boolean;
  width?: number;
  height?: number;
}

/** matplotlib's tab10 colours, then darker variants, so twelve series stay distinguishable. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#0b3d66', '#7a3d00'];
const MARKERS = ['circle', 'square', 'triangle', 'diamond'] as const;

/** Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, target - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** Decimals that print every multiple of `step` exactly (2.5 needs one more than 2). */
function decimalsOf(step: number): number {
  if (!(step > 0)) return 0;
  const e = Math.floor(Math.log10(step) + 1e-9);
  const m = step / 10 ** e;
  return Math.max(0, -e + (Math.abs(m - Math.round(m)) > 1e-6 ? 1 : 0));
}

export function formatTick(v: number, decimals: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) {
    const e = Math.floor(Math.log10(Math.abs(v)));
    const m = v / 10 ** e;
    return `${Number(m.toFixed(2))}e${e}`;
  }
  return v.toFixed(decimals);
}

interface Axis {
  log: boolean;
  lo: number;
  hi: number;
  ticks: number[];
  labels: string[];
}

function useLog(values: number[], scale: 'linear' | 'log' | 'auto' | undefined, span: number): boolean {
  if (scale === undefined || scale === 'linear') return false;
  const positive = values.length > 0 && values.every((v) => v > 0);
  if (scale === 'log') return positive;
  return positive && Math.max(...values) / Math.min(...values) >= span;
}

function makeAxis(values: number[], log: boolean, atData: boolean, percent: boolean): Axis {
  if (values.length === 0) return { log: false, lo: 0, hi: 1, ticks: [0, 1], labels: ['0', '1'] };
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (atData) {
    const ticks = [...new Set(values)].sort((a, b) => a - b);
    if (log) {
      const pad = ticks.length > 1 ? (Math.log10(hi) - Math.log10(lo)) * 0.08 : 0.3;
      return { log, lo: 10 ** (Math.log10(lo) - pad), hi: 10 ** (Math.log10(hi) + pad), ticks, labels: ticks.map((t) => String(t)) };
    }
    const pad = ticks.length > 1 ? (hi - lo) * 0.08 : 1;
    return { log, lo: lo - pad, hi: hi + pad, ticks, labels: ticks.map((t) => String(t)) };
  }
  if (log) {
    let a = Math.floor(Math.log10(lo));
    let b = Math.ceil(Math.log10(hi));
    if (a === b) {
      a -= 1;
      b += 1;
    }
    const ticks: number[] = [];
    const stride = Math.max(1, Math.ceil((b - a) / 6));
    for (let e = a; e <= b; e += stride) ticks.push(10 ** e);
    return { log, lo: 10 ** a, hi: 10 ** b, ticks, labels: ticks.map((t) => formatTick(t, 0)) };
  }
  if (hi === lo) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const scale = percent ? 100 : 1;
  const ticks = niceTicks(lo * scale, hi * scale).map((t) => t / scale);
  const step = ticks.length > 1 ? (ticks[1] - ticks[0]) * scale : 1;
  const decimals = decimalsOf(step);
  return { log, lo: ticks[0], hi: ticks[ticks.length - 1], ticks, labels: ticks.map((t) => formatTick(t * scale, decimals)) };
}

function marker(kind: (typeof MARKERS)[number], x: number, y: number, r: number, fill: string): Shape {
  switch (kind) {
    case 'circle':
      return { type: 'circle', cx: x, cy: y, r, fill };
    case 'square':
      return { type: 'polygon', points: [[x - r * 0.9, y - r * 0.9], [x + r * 0.9, y - r * 0.9], [x + r * 0.9, y + r * 0.9], [x - r * 0.9, y + r * 0.9]], fill };
    case 'triangle':
      return { type: 'polygon', points: [[x, y - r * 1.2], [x + r * 1.1, y + r * 0.8], [x - r * 1.1, y + r * 0.8]], fill };
    case 'diamond':
      return { type: 'polygon', points: [[x, y - r * 1.25], [x + r * 1.1, y], [x, y + r * 1.25], [x - r * 1.1, y]], fill };
  }
}

/** A line chart with optional error bars and markers, axes, ticks, grid, title and a legend on the right. */
export function lineChart(o: LineChartOptions): Scene {
  const W = o.width ?? 640;
  const H = o.height ?? 400;
  const shapes: Shape[] = [];
  const series = o.series.filter((s) => s.points.length > 0);
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p.err ? [p.y - p.err, p.y + p.err] : [p.y])));
  const xAxis = makeAxis(xs, useLog(xs, o.xScale, 10), o.xTicksAtData === true, false);
  const yLog = useLog(ys, o.yScale, 50);
  const yAxis = makeAxis(yLog ? ys.filter((v) => v > 0) : ys, yLog, false, o.yPercent === true);

  const legendFont = 11;
  const maxLegend = 190;
  const fit = (label: string): string => {
    if (textWidth(label, legendFont) <= maxLegend) return label;
    let s = label;
    while (s.length > 1 && textWidth(`${s}…`, legendFont) > maxLegend) s = s.slice(0, -1);
    return `${s}…`;
  };
  const legendW = series.length > 0 ? Math.min(maxLegend + 40, Math.max(...series.map((s) => textWidth(fit(s.label), legendFont))) + 40) : 0;
  const tickFont = 11;
  const yLabelW = Math.max(0, ...yAxis.labels.map((l) => textWidth(l, tickFont)));
  const left = 30 + yLabelW + 8;
  const right = W - 12 - legendW;
  const top = 34;
  const bottom = H - 44;
  const tx = (x: number): number => {
    const [a, b, v] = xAxis.log ? [Math.log10(xAxis.lo), Math.log10(xAxis.hi), Math.log10(x)] : [xAxis.lo, xAxis.hi, x];
    return left + ((v - a) / (b - a || 1)) * (right - left);
  };
  const ty = (y: number): number => {
    const [a, b, v] = yAxis.log ? [Math.log10(yAxis.lo), Math.log10(yAxis.hi), Math.log10(Math.max(y, yAxis.lo))] : [yAxis.lo, yAxis.hi, y];
    return bottom - ((v - a) / (b - a || 1)) * (bottom - top);
  };

  shapes.push({ type: 'text', x: W / 2, y: 16, text: o.title, size: 13, color: '#111111', anchor: 'middle', valign: 'middle', bold: true });
  yAxis.ticks.forEach((t, i) => {
    const y = ty(t);
    shapes.push({ type: 'polyline', points: [[left, y], [right, y]], stroke: '#e3e3e3', width: 1 });
    shapes.push({ type: 'polyline', points: [[left - 4, y], [left, y]], stroke: '#444444', width: 1 });
    shapes.push({ type: 'text', x: left - 7, y, text: yAxis.labels[i], size: tickFont, color: '#333333', anchor: 'end', valign: 'middle' });
  });
  xAxis.ticks.forEach((t, i) => {
    const x = tx(t);
    shapes.push({ type: 'polyline', points: [[x, bottom], [x, bottom + 4]], stroke: '#444444', width: 1 });
    shapes.push({ type: 'text', x, y: bottom + 7, text: xAxis.labels[i], size: tickFont, color: '#333333', anchor: 'middle', valign: 'top' });
  });
  shapes.push({ type: 'rect', x: left, y: top, w: right - left, h: bottom - top, stroke: '#444444', strokeWidth: 1 });
  shapes.push({ type: 'text', x: (left + right) / 2, y: H - 10, text: o.xLabel, size: 12, color: '#111111', anchor: 'middle', valign: 'baseline' });
  shapes.push({ type: 'text', x: 14, y: (top + bottom) / 2, text: o.yLabel, size: 12, color: '#111111', anchor: 'middle', valign: 'middle', vertical: true });
  if (series.length === 0) {
    shapes.push({ type: 'text', x: (left + right) / 2, y: (top + bottom) / 2, text: 'no data yet', size: 12, color: '#888888', anchor: 'middle', valign: 'middle' });
  }

  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    for (const p of pts) {
      if (!p.err) continue;
      const x = tx(p.x);
      const [y0, y1] = [ty(p.y - p.err), ty(p.y + p.err)];
      shapes.push({ type: 'polyline', points: [[x, y0], [x, y1]], stroke: color, width: 1.2 });
      shapes.push({ type: 'polyline', points: [[x - 3, y0], [x + 3, y0]], stroke: color, width: 1.2 });
      shapes.push({ type: 'polyline', points: [[x - 3, y1], [x + 3, y1]], stroke: color, width: 1.2 });
    }
    if (pts.length > 1) shapes.push({ type: 'polyline', points: pts.map((p) => [tx(p.x), ty(p.y)]), stroke: color, width: 1.8 });
    if (o.markers !== false || pts.length === 1) for (const p of pts) shapes.push(marker(MARKERS[i % MARKERS.length], tx(p.x), ty(p.y), 3.5, color));
    const ly = top + 8 + i * 17;
    const lx = right + 14;
    shapes.push({ type: 'polyline', points: [[lx, ly], [lx + 20, ly]], stroke: color, width: 1.8 });
    if (o.markers !== false) shapes.push(marker(MARKERS[i % MARKERS.length], lx + 10, ly, 3.5, color));
    shapes.push({ type: 'text', x: lx + 26, y: ly, text: fit(s.label), size: legendFont, color: '#222222', anchor: 'start', valign: 'middle' });
  });
  return { width: W, height: H, background: '#ffffff', title: o.title, shapes };
}
