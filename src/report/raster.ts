import type { Point, Scene, Shape } from './chart.js';
import { GLYPH_ADVANCE, GLYPH_ASCENT, fontPixel, glyph, textUnits } from './font.js';
import type { Raster } from './png.js';

/**
 * Draws a scene into an RGB raster for the PNG plots: shapes are filled by testing pixel centres
 * (distance to a segment for strokes, even-odd scanlines for polygons) on a 2x supersampled canvas
 * that is box-filtered down, which smooths the edges; text uses the bitmap font in font.ts.
 */

// The box filter in sceneToRaster is written for 2.
const SUPERSAMPLE = 2;

function parseColor(hex: string): [number, number, number] {
  const h = hex.replace('#', '');
  const full = h.length === 3 ? [...h].map((c) => c + c).join('') : h;
  const v = Number.parseInt(full.slice(0, 6), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

class Canvas {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: string,
  ) {
    this.data = new Uint8Array(width * height * 3);
    const [r, g, b] = parseColor(background);
    if (r === g && g === b) {
      this.data.fill(r);
      return;
    }
    for (let i = 0; i < width * height; i++) {
      this.data[i * 3] = r;
      this.data[i * 3 + 1] = g;
      this.data[i * 3 + 2] = b;
    }
  }

  set(x: number, y: number, c: [number, number, number]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }

  fillRect(x0: number, y0: number, x1: number, y1: number, c: [number, number, number]): void {
    for (let y = Math.max(0, Math.round(y0)); y < Math.min(this.height, Math.round(y1)); y++) {
      for (let x = Math.max(0, Math.round(x0)); x < Math.min(this.width, Math.round(x1)); x++) this.set(x, y, c);
    }
  }

  /** A stroke with round caps; long strokes go in short pieces so each piece only tests pixels near it. */
  segment(a: Point, b: Point, width: number, c: [number, number, number]): void {
    const pieces = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / 16));
    for (let i = 0; i < pieces; i++) {
      const t0 = i / pieces;
      const t1 = (i + 1) / pieces;
      this.piece([a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0], [a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1], width, c);
    }
  }

  private piece(a: Point, b: Point, width: number, c: [number, number, number]): void {
    const half = Math.max(0.5, width / 2);
    const [ax, ay] = a;
    const [bx, by] = b;
    const dx = bx - ax;
    const dy = by - ay;
    const len2 = dx * dx + dy * dy;
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - half));
    const x1 = Math.min(this.width - 1, Math.ceil(Math.max(ax, bx) + half));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - half));
    const y1 = Math.min(this.height - 1, Math.ceil(Math.max(ay, by) + half));
    const h2 = half * half;
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5;
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5;
        const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
        const qx = ax + t * dx - px;
        const qy = ay + t * dy - py;
        if (qx * qx + qy * qy <= h2) this.set(x, y, c);
      }
    }
  }

  circle(cx: number, cy: number, r: number, c: [number, number, number]): void {
    for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
      for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) this.set(x, y, c);
      }
    }
  }

  polygon(points: Point[], c: [number, number, number]): void {
    const ys = points.map((p) => p[1]);
    for (let y = Math.max(0, Math.floor(Math.min(...ys))); y <= Math.min(this.height - 1, Math.ceil(Math.max(...ys))); y++) {
      const py = y + 0.5;
      const xs: number[] = [];
      for (let i = 0; i < points.length; i++) {
        const [ax, ay] = points[i];
        const [bx, by] = points[(i + 1) % points.length];
        if ((ay <= py && by > py) || (by <= py && ay > py)) xs.push(ax + ((py - ay) / (by - ay)) * (bx - ax));
      }
      xs.sort((a, b) => a - b);
      for (let i = 0; i + 1 < xs.length; i += 2) {
        for (let x = Math.ceil(xs[i] - 0.5); x <= Math.floor(xs[i + 1] - 0.5); x++) this.set(x, y, c);
      }
    }
  }
}

function drawText(cv: Canvas, s: Extract<Shape, { type: 'text' }>, k: number, scale: number): void {
  const px = fontPixel(s.size, scale) * SUPERSAMPLE;
  const width = textUnits(s.text) * px;
  const along = s.anchor === 'middle' ? -width / 2 : s.anchor === 'end' ? -width : 0;
  const across = s.valign === 'middle' ? -(GLYPH_ASCENT * px) / 2 : s.valign === 'top' ? 0 : -GLYPH_ASCENT * px;
  const c = parseColor(s.color);
  const x = s.x * k;
  const y = s.y * k;
  const passes = s.bold ? [0, Math.max(1, Math.floor(px / 2))] : [0];
  let u0 = along;
  for (const ch of s.text) {
    const g = glyph(ch);
    for (let gy = 0; gy < g.length; gy++) {
      for (let gx = 0; gx < g[gy].length; gx++) {
        if (!g[gy][gx]) continue;
        for (const extra of passes) {
          // (u, v): offsets along the text and down from its top, in canvas pixels.
          const u = Math.round(u0 + gx * px + extra);
          const v = Math.round(across + gy * px);
          for (let a = 0; a < px; a++) {
            for (let b = 0; b < px; b++) {
              if (s.vertical) cv.set(Math.round(x + v) + b, Math.round(y - u) - a - 1, c);
              else cv.set(Math.round(x + u) + a, Math.round(y + v) + b, c);
            }
          }
        }
      }
    }
    u0 += GLYPH_ADVANCE * px;
  }
}

/** The scene at `scale` output pixels per CSS pixel (2 suits high-density screens and print). */
export function sceneToRaster(scene: Scene, scale = 2): Raster {
  const k = scale * SUPERSAMPLE;
  const cv = new Canvas(Math.round(scene.width * k), Math.round(scene.height * k), scene.background);
  const P = (p: Point): Point => [p[0] * k, p[1] * k];
  for (const s of scene.shapes) {
    switch (s.type) {
      case 'polyline': {
        const c = parseColor(s.stroke);
        for (let i = 0; i + 1 < s.points.length; i++) cv.segment(P(s.points[i]), P(s.points[i + 1]), s.width * k, c);
        break;
      }
      case 'polygon':
        cv.polygon(s.points.map(P), parseColor(s.fill));
        break;
      case 'circle':
        cv.circle(s.cx * k, s.cy * k, s.r * k, parseColor(s.fill));
        break;
      case 'rect': {
        if (s.fill) cv.fillRect(s.x * k, s.y * k, (s.x + s.w) * k, (s.y + s.h) * k, parseColor(s.fill));
        if (s.stroke) {
          const c = parseColor(s.stroke);
          const w = (s.strokeWidth ?? 1) * k;
          const [x0, y0, x1, y1] = [s.x * k, s.y * k, (s.x + s.w) * k, (s.y + s.h) * k];
          cv.segment([x0, y0], [x1, y0], w, c);
          cv.segment([x1, y0], [x1, y1], w, c);
          cv.segment([x1, y1], [x0, y1], w, c);
          cv.segment([x0, y1], [x0, y0], w, c);
        }
        break;
      }
      case 'text':
        drawText(cv, s, k, scale);
        break;
    }
  }
  const W = Math.floor(cv.width / SUPERSAMPLE);
  const H = Math.floor(cv.height / SUPERSAMPLE);
  const out = new Uint8Array(W * H * 3);
  const src = cv.data;
  const row = cv.width * 3;
  for (let y = 0; y < H; y++) {
    const r0 = y * SUPERSAMPLE * row;
    for (let x = 0; x < W; x++) {
      // SUPERSAMPLE is 2: average the 2x2 block.
      const i = r0 + x * SUPERSAMPLE * 3;
      const o = (y * W + x) * 3;
      out[o] = (src[i] + src[i + 3] + src[i + row] + src[i + row + 3] + 2) >> 2;
      out[o + 1] = (src[i + 1] + src[i + 4] + src[i + row + 1] + src[i + row + 4] + 2) >> 2;
      out[o + 2] = (src[i + 2] + src[i + 5] + src[i + row + 2] + src[i + row + 5] + 2) >> 2;
    }
  }
  return { width: W, height: H, channels: 3, data: out };
}
