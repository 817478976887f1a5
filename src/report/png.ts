import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';

/**
 * PNG pictures of normalised NCHW images: grids (one row per class when labels are given) and
 * CAM heat-map overlays. Pixels are de-normalised with the dataset's mean/std
 * (pixel = (x * std[c] + mean[c]) * 255), rounded and clamped to 0..255.
 */

/** An 8-bit raster, interleaved: 1 channel (grayscale) or 3 (RGB). */
export interface Raster {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export interface GridLayoutOptions {
  /** Integer nearest-neighbour upscaling of every tile (default 1). */
  scale?: number;
  /** Pixels between tiles and around the grid (default 2). */
  padding?: number;
  /** Gray level 0..255 of the padding (default 255). */
  background?: number;
}

export interface ImageGridOptions extends GridLayoutOptions {
  /** Per-channel normalisation of `images` (length C, or 1 to share). */
  mean: number[];
  std: number[];
  /** Without labels: grid rows (default ceil(n / cols)). Ignored with labels (one row per class). */
  rows?: number;
  /** Images per row (default: ceil(sqrt(n)) without labels, the largest class count with labels). */
  cols?: number;
  /** Class of each image: row c shows the images of class c in input order, the first `cols` of them. */
  labels?: ArrayLike<number>;
  /** With labels: number of rows (default: largest label + 1), so empty classes keep their row. */
  classes?: number;
}

export type ColormapName = 'jet' | 'viridis';

export interface HeatmapOverlayOptions extends GridLayoutOptions {
  mean: number[];
  std: number[];
  /** Maps per image (e.g. one CAM per auxiliary network): `maps` is [n, mapsPerImage, h, w]. Default 1. */
  mapsPerImage?: number;
  /** Default jet. */
  colormap?: ColormapName;
  /** Weight of the colour map in the blend, 0..1 (default 0.5). */
  alpha?: number;
  /** Put the plain image before its overlays in each row (default true). */
  showImage?: boolean;
}

function channelStat(values: number[], c: number, channels: number, what: string): number {
  if (values.length !== channels && values.length !== 1) {
    throw new Error(`image grid: ${what} has ${values.length} values, expected ${channels} (one per channel) or 1`);
  }
  return values.length === 1 ? values[0] : values[c];
}

function toByte(v: number): number {
  if (!(v > 0)) return 0; // also NaN
  return v >= 255 ? 255 : Math.round(v);
}

function checkShape(images: Float32Array, shape: number[]): [number, number, number, number] {
  if (shape.length !== 4) throw new Error(`image grid: shape [${shape.join(', ')}], expected [n, c, h, w]`);
  const [n, c, h, w] = shape;
  if (c !== 1 && c !== 3) throw new Error(`image grid: ${c} channels, expected 1 (grayscale) or 3 (RGB)`);
  if (images.length !== n * c * h * w) {
    throw new Error(`image grid: ${images.length} values do not match shape [${shape.join(', ')}] (${n * c * h * w})`);
  }
  return [n, c, h, w];
}

function integer(v: number | undefined, fallback: number, what: string, min: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < min) throw new Error(`image grid: ${what} must be an integer >= ${min}, got ${x}`);
  return x;
}

/** A blank grid raster, and where tile (row, col) starts. */
function blankGrid(rows: number, cols: number, h: number, w: number, channels: 1 | 3, layout: GridLayoutOptions) {
  const scale = integer(layout.scale, 1, 'scale', 1);
  const pad = integer(layout.padding, 2, 'padding', 0);
  const th = h * scale;
  const tw = w * scale;
  const width = pad + cols * (tw + pad);
  const height = pad + rows * (th + pad);
  const raster: Raster = { width, height, channels, data: new Uint8Array(width * height * channels).fill(toByte(layout.background ?? 255)) };
  return { raster, scale, origin: (row: number, col: number) => [pad + col * (tw + pad), pad + row * (th + pad)] as const };
}

/** Copy one h x w tile of interleaved bytes into the raster at (x0, y0), upscaled. */
function blit(raster: Raster, tile: Uint8Array, h: number, w: number, x0: number, y0: number, scale: number): void {
  const ch = raster.channels;
  for (let y = 0; y < h * scale; y++) {
    const sy = Math.floor(y / scale);
    for (let x = 0; x < w * scale; x++) {
      const sx = Math.floor(x / scale);
      const src = (sy * w + sx) * ch;
      const dst = ((y0 + y) * raster.width + x0 + x) * ch;
      for (let k = 0; k < ch; k++) raster.data[dst + k] = tile[src + k];
    }
  }
}

/** Image i of an NCHW normalised array as interleaved 8-bit pixels. */
function imageBytes(images: Float32Array, i: number, c: number, h: number, w: number, mean: number[], std: number[]): Uint8Array {
  const plane = h * w;
  const out = new Uint8Array(plane * c);
  for (let k = 0; k < c; k++) {
    const m = channelStat(mean, k, c, 'mean');
    const s = channelStat(std, k, c, 'std');
    const base = (i * c + k) * plane;
    for (let p = 0; p < plane; p++) out[p * c + k] = toByte((images[base + p] * s + m) * 255);
  }
  return out;
}

/** Which image goes in which cell: rows of image indices (-1 = empty cell). */
function gridCells(n: number, opts: ImageGridOptions): number[][] {
  if (opts.labels) {
    const labels = opts.labels;
    if (labels.length !== n) throw new Error(`image grid: ${labels.length} labels for ${n} images`);
    let maxLabel = -1;
    for (let i = 0; i < n; i++) maxLabel = Math.max(maxLabel, labels[i]);
    const classes = integer(opts.classes, maxLabel + 1, 'classes', 1);
    const rows: number[][] = Array.from({ length: classes }, () => []);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= classes) throw new Error(`image grid: label ${y} of image ${i} is outside 0..${classes - 1}`);
      rows[y].push(i);
    }
    const cols = integer(opts.cols, Math.max(1, ...rows.map((r) => r.length)), 'cols', 1);
    return rows.map((r) => Array.from({ length: cols }, (_, j) => (j < r.length ? r[j] : -1)));
  }
  const cols = integer(opts.cols, opts.rows ? Math.max(1, Math.ceil(n / opts.rows)) : Math.max(1, Math.ceil(Math.sqrt(n))), 'cols', 1);
  const rows = integer(opts.rows, Math.max(1, Math.ceil(n / cols)), 'rows', 1);
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, j) => (r * cols + j < n ? r * cols + j : -1)));
}

/** The grid as a raster (grayscale for 1-channel images, RGB for 3). */
export function renderImageGrid(images: Float32Array, shape: [number, number, number, number], opts: ImageGridOptions): Raster {
  const [n, c, h, w] = checkShape(images, shape);
  const cells = gridCells(n, opts);
  const { raster, scale, origin } = blankGrid(cells.length, cells[0]?.length ?? 1, h, w, c as 1 | 3, opts);
  cells.forEach((row, r) =>
    row.forEach((i, col) => {
      if (i < 0) return;
      const [x0, y0] = origin(r, col);
      blit(raster, imageBytes(images, i, c, h, w, opts.mean, opts.std), h, w, x0, y0, scale);
    }),
  );
  return raster;
}

export interface EncodeOptions {
  /**
   * PNG row filter (0 none, 1 sub, 2 up, 3 average, 4 Paeth); default: pngjs's adaptive choice per
   * row, the smallest file. A fixed filter is several times faster on large plots.
   */
  filterType?: 0 | 1 | 2 | 3 | 4;
}

export function encodePng(raster: Raster, options: EncodeOptions = {}): Buffer {
  const png = new PNG({ width: raster.width, height: raster.height });
  png.data = Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength);
  const colorType = raster.channels === 1 ? 0 : 2;
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, ...(options.filterType === undefined ? {} : { filterType: options.filterType }) });
}

function writePng(path: string, raster: Raster): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(raster));
}

/** Write `images` (NCHW, normalised) as a PNG grid; see ImageGridOptions for the layout. */
export function writeImageGrid(path: string, images: Float32Array, shape: [number, number, number, number], opts: ImageGridOptions): void {
  writePng(path, renderImageGrid(images, shape, opts));
}

// matplotlib's viridis table (_cm_listed.py) sampled at entries 0, 32, ..., 224 and 255.
const VIRIDIS: [number, number, number][] = [
  [0.267004, 0.004874, 0.329415],
  [0.278826, 0.17549, 0.483397],
  [0.229739, 0.322361, 0.545706],
  [0.172719, 0.448791, 0.557885],
  [0.127568, 0.566949, 0.550556],
  [0.157851, 0.683765, 0.501686],
  [0.369214, 0.788888, 0.382914],
  [0.678489, 0.863742, 0.189503],
  [0.993248, 0.906157, 0.143936],
];

/** Colour of v in [0, 1] (clamped; NaN as 0) as 0..255 RGB. Jet is the classic piecewise-linear blue-cyan-yellow-red. */
export function colormap(name: ColormapName, v: number): [number, number, number] {
  const t = v > 0 ? (v < 1 ? v : 1) : 0;
  if (name === 'jet') {
    const f = (x: number) => toByte(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - x))));
    return [f(3), f(2), f(1)];
  }
  const pos = t * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(pos));
  const a = pos - i;
  const lo = VIRIDIS[i];
  const hi = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => toByte(255 * (lo[k] + a * (hi[k] - lo[k])))) as [number, number, number];
}

/**
 * Heat-map overlays (class activation maps): one row per image, the plain image first (unless
 * `showImage` is false) and then one overlay per map, blended as
 * (1 - alpha) * image + alpha * colormap(map). `maps` is [n, mapsPerImage, h, w] with values in
 * [0, 1] (clamped), at the image resolution. The output is always RGB.
 */
export function renderHeatmapOverlay(
  images: Float32Array,
  shape: [number, number, number, number],
  maps: Float32Array,
  opts: HeatmapOverlayOptions,
): Raster {
  const [n, c, h, w] = checkShape(images, shape);
  const k = integer(opts.mapsPerImage, 1, 'mapsPerImage', 1);
  const plane = h * w;
  if (maps.length !== n * k * plane) {
    throw new Error(`heatmap overlay: ${maps.length} map values, expected ${n * k * plane} ([${n}, ${k}, ${h}, ${w}])`);
  }
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`heatmap overlay: alpha must be in [0, 1], got ${alpha}`);
  const cmap = opts.colormap ?? 'jet';
  const showImage = opts.showImage ?? true;
  const first = showImage ? 1 : 0;
  const { raster, scale, origin } = blankGrid(n, first + k, h, w, 3, opts);
  for (let i = 0; i < n; i++) {
    const img = imageBytes(images, i, c, h, w, opts.mean, opts.std);
    const rgb = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = img[p * c + (c === 3 ? ch : 0)];
    }
    if (showImage) {
      const [x0, y0] = origin(i, 0);
      blit(raster, rgb, h, w, x0, y0, scale);
    }
    for (let m = 0; m < k; m++) {
      const tile = new Uint8Array(plane * 3);
      const base = (i * k + m) * plane;
      for (let p = 0; p < plane; p++) {
        const col = colormap(cmap, maps[base + p]);
        for (let ch = 0; ch < 3; ch++) tile[p * 3 + ch] = toByte((1 - alpha) * rgb[p * 3 + ch] + alpha * col[ch]);
      }
      const [x0, y0] = origin(i, first + m);
      blit(raster, tile, h, w, x0, y0, scale);
    }
  }
  return raster;
}

export function writeHeatmapOverlay(
  path: string,
  images: Float32Array,
  shape: [number, number, number, number],
  maps: Float32Array,
  opts: HeatmapOverlayOptions,
): void {
  writePng(path, renderHeatmapOverlay(images, shape, maps, opts));
}
