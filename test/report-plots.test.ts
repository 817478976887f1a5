import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { lineChart, niceTicks, PALETTE, type Scene } from '../src/report/chart.js';
import { glyph, hasGlyph, helveticaWidth } from '../src/report/font.js';
import { sceneToPdf } from '../src/report/pdf.js';
import { encodePng } from '../src/report/png.js';
import { sceneToRaster } from '../src/report/raster.js';
import { sceneToSvg } from '../src/report/svg.js';

function chart(): Scene {
  return lineChart({
    title: 'ConvNet: accuracy vs IPC',
    xLabel: 'IPC',
    yLabel: 'test accuracy (%)',
    series: [
      { label: 'DC & (base)', points: [{ x: 1, y: 0.6, err: 0.01 }, { x: 10, y: 0.8, err: 0.02 }, { x: 50, y: 0.9 }] },
      { label: 'DC +MetaDD', points: [{ x: 1, y: 0.62 }, { x: 10, y: 0.83 }, { x: 50, y: 0.92 }] },
    ],
    xScale: 'auto',
    xTicksAtData: true,
    yPercent: true,
  });
}

test('the bitmap font covers printable ASCII and ±; Helvetica widths are the AFM ones', () => {
  for (let c = 32; c <= 126; c++) {
    const ch = String.fromCharCode(c);
    assert.ok(hasGlyph(ch), `glyph for ${JSON.stringify(ch)}`);
    const g = glyph(ch);
    assert.equal(g.length, 8);
    assert.ok(g.every((row) => row.length === 5));
    if (ch !== ' ') assert.ok(g.flat().some(Boolean), `glyph ${JSON.stringify(ch)} has ink`);
  }
  assert.ok(hasGlyph('±'));
  assert.notDeepEqual(glyph('O'), glyph('0'));
  assert.equal(helveticaWidth('A', 1000), 667);
  assert.equal(helveticaWidth('i', 1000), 222);
  assert.equal(helveticaWidth('0123456789', 1000), 5560);
  assert.equal(helveticaWidth('~', 1000), 584);
  assert.equal(helveticaWidth('W', 10), 9.44);
});

test('nice ticks cover the range in steps of 1, 2, 2.5 or 5 times a power of ten', () => {
  assert.deepEqual(niceTicks(51, 97), [50, 60, 70, 80, 90, 100]);
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(2.1, 3.9), [2, 2.5, 3, 3.5, 4]);
  assert.deepEqual(niceTicks(5, 5), [5]);
});

test('the PNG plot: 2 pixels per CSS pixel, white background, both series drawn in their colours, text inked', () => {
  const scene = chart();
  const png = PNG.sync.read(encodePng(sceneToRaster(scene, 2), { filterType: 1 }));
  assert.equal(png.width, scene.width * 2);
  assert.equal(png.height, scene.height * 2);
  const at = (x: number, y: number): number[] => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
  assert.deepEqual(at(0, 0), [255, 255, 255]);
  const hex = (c: string): number[] => [1, 3, 5].map((i) => Number.parseInt(c.slice(i, i + 2), 16));
  const count = (rgb: number[]): number => {
    let n = 0;
    for (let i = 0; i < png.data.length; i += 4) if (Math.abs(png.data[i] - rgb[0]) + Math.abs(png.data[i + 1] - rgb[1]) + Math.abs(png.data[i + 2] - rgb[2]) < 12) n++;
    return n;
  };
  assert.ok(count(hex(PALETTE[0])) > 1500, 'first series');
  assert.ok(count(hex(PALETTE[1])) > 1500, 'second series');
  assert.equal(count(hex(PALETTE[2])), 0, 'no third series');
  // The title (top band) and the rotated y label (left band, taller than wide) are inked.
  const ink = (x0: number, y0: number, x1: number, y1: number) => {
    let minX = Infinity, maxX = -1, minY = Infinity, maxY = -1;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (at(x, y)[0] < 80) {
          minX = Math.min(minX, x);
          maxX = Math.max(maxX, x);
          minY = Math.min(minY, y);
          maxY = Math.max(maxY, y);
        }
      }
    }
    return { w: maxX - minX + 1, h: maxY - minY + 1 };
  };
  const title = ink(0, 0, png.width, 56);
  assert.ok(title.w > 300 && title.h > 10 && title.h < 40, `title ink ${JSON.stringify(title)}`);
  const yLabel = ink(0, 100, 44, png.height - 100);
  assert.ok(yLabel.h > 150 && yLabel.w < 30, `vertical y label ink ${JSON.stringify(yLabel)}`);
});

test('the SVG plot is a standalone document with escaped text and one polyline per series', () => {
  const svg = sceneToSvg(chart());
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400"'));
  assert.ok(svg.includes('>DC &amp; (base)</text>'));
  assert.ok(!svg.includes('DC & '));
  for (const c of PALETTE.slice(0, 2)) assert.ok(svg.includes(`stroke="${c}" stroke-width="1.8"`), `series ${c}`);
  assert.ok(svg.includes('rotate(-90)'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});

test('the PDF plot: valid cross-reference table, stream length, Helvetica text with escapes', () => {
  const pdf = sceneToPdf(chart());
  const text = pdf.toString('latin1');
  assert.ok(text.startsWith('%PDF-1.4\n'));
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
  assert.equal(text.slice(startxref, startxref + 4), 'xref');
  const entries = [...text.slice(startxref).matchAll(/^(\d{10}) 00000 n $/gm)].map((m) => Number(m[1]));
  assert.equal(entries.length, 7);
  entries.forEach((off, i) => assert.equal(text.slice(off, off + `${i + 1} 0 obj`.length), `${i + 1} 0 obj`, `object ${i + 1} offset`));
  const stream = /<< \/Length (\d+) >>\nstream\n/.exec(text);
  assert.ok(stream);
  const start = (stream.index ?? 0) + stream[0].length;
  assert.equal(text.slice(start + Number(stream[1]), start + Number(stream[1]) + 10), '\nendstream');
  assert.ok(text.includes('/BaseFont /Helvetica '));
  assert.ok(text.includes('(DC & \\(base\\)) Tj'), 'parentheses escaped');
  assert.ok(/0 -1 -1 0 [\d.]+ [\d.]+ Tm \(test accuracy \\\(%\\\)\) Tj/.test(text), 'rotated y label');
});
