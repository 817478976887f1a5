import type { Scene, Shape } from './chart.js';
import { helveticaWidth } from './font.js';
import { baselineOffset } from './svg.js';

/**
 * A one-page vector PDF of a scene, for \includegraphics in LaTeX (pdflatex reads PDF figures
 * natively, SVG needs extra tools). Text uses the standard Helvetica font with WinAnsi encoding,
 * so nothing is embedded; one CSS pixel is 0.75 pt.
 */

function num(v: number): string {
  return String(Math.round(v * 1000) / 1000);
}

function rgb(hex: string): [number, number, number] {
  const h = hex.replace('#', '');
  const full = h.length === 3 ? [...h].map((c) => c + c).join('') : h;
  const v = Number.parseInt(full.slice(0, 6), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

function color(hex: string, op: 'rg' | 'RG'): string {
  return `${rgb(hex).map(num).join(' ')} ${op}`;
}

const WIN_ANSI: Record<string, number> = { '±': 0xb1, '·': 0xb7, '–': 0x96, '—': 0x97, '…': 0x85, 'é': 0xe9, 'ö': 0xf6, 'ü': 0xfc };

/** A PDF string literal in WinAnsi bytes (characters outside it become '?'). */
function pdfString(s: string): string {
  let out = '(';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 63;
    const b = c >= 32 && c <= 126 ? c : (WIN_ANSI[ch] ?? 63);
    if (b === 40 || b === 41 || b === 92) out += `\\${String.fromCharCode(b)}`;
    else if (b < 128) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return `${out})`;
}

// A circle as four cubic Béziers (kappa = 4 (sqrt 2 - 1) / 3).
function circlePath(cx: number, cy: number, r: number): string {
  const k = 0.5522847498 * r;
  return [
    `${num(cx + r)} ${num(cy)} m`,
    `${num(cx + r)} ${num(cy + k)} ${num(cx + k)} ${num(cy + r)} ${num(cx)} ${num(cy + r)} c`,
    `${num(cx - k)} ${num(cy + r)} ${num(cx - r)} ${num(cy + k)} ${num(cx - r)} ${num(cy)} c`,
    `${num(cx - r)} ${num(cy - k)} ${num(cx - k)} ${num(cy - r)} ${num(cx)} ${num(cy - r)} c`,
    `${num(cx + k)} ${num(cy - r)} ${num(cx + r)} ${num(cy - k)} ${num(cx + r)} ${num(cy)} c`,
  ].join('\n');
}

function shapeOps(s: Shape): string {
  switch (s.type) {
    case 'polyline':
      return `${color(s.stroke, 'RG')} ${num(s.width)} w\n${s.points.map(([x, y], i) => `${num(x)} ${num(y)} ${i === 0 ? 'm' : 'l'}`).join('\n')}\nS`;
    case 'polygon':
      return `${color(s.fill, 'rg')}\n${s.points.map(([x, y], i) => `${num(x)} ${num(y)} ${i === 0 ? 'm' : 'l'}`).join('\n')}\nh f`;
    case 'circle':
      return `${color(s.fill, 'rg')}\n${circlePath(s.cx, s.cy, s.r)}\nf`;
    case 'rect': {
      const ops: string[] = [];
      if (s.fill) ops.push(`${color(s.fill, 'rg')} ${num(s.x)} ${num(s.y)} ${num(s.w)} ${num(s.h)} re f`);
      if (s.stroke) ops.push(`${color(s.stroke, 'RG')} ${num(s.strokeWidth ?? 1)} w ${num(s.x)} ${num(s.y)} ${num(s.w)} ${num(s.h)} re S`);
      return ops.join('\n');
    }
    case 'text': {
      const w = helveticaWidth(s.text, s.size);
      const shift = s.anchor === 'middle' ? w / 2 : s.anchor === 'end' ? w : 0;
      const dy = baselineOffset(s.valign, s.size);
      const font = s.bold ? '/F2' : '/F1';
      // The page's y axis points down (see sceneToPdf); these text matrices turn the glyphs upright again.
      const tm = s.vertical ? `0 -1 -1 0 ${num(s.x + dy)} ${num(s.y + shift)}` : `1 0 0 -1 ${num(s.x - shift)} ${num(s.y + dy)}`;
      return `BT ${color(s.color, 'rg')} ${font} ${num(s.size)} Tf ${tm} Tm ${pdfString(s.text)} Tj ET`;
    }
  }
}

export function sceneToPdf(scene: Scene): Buffer {
  const pt = 0.75;
  const W = scene.width * pt;
  const H = scene.height * pt;
  const content = [
    `${num(pt)} 0 0 ${num(-pt)} 0 ${num(H)} cm`,
    '1 J 1 j',
    `${color(scene.background, 'rg')} 0 0 ${scene.width} ${scene.height} re f`,
    ...scene.shapes.map(shapeOps),
  ].join('\n');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${num(W)} ${num(H)}] /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>`,
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>',
    `<< /Title ${pdfString(scene.title)} /Producer (metadd) >>`,
  ];
  let out = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R /Info ${objects.length} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
