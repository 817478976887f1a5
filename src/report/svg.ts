import type { Scene, Shape } from './chart.js';

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function n(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Baseline offset of text positioned by its middle or top (cap height of Helvetica is about 0.72 em). */
export function baselineOffset(valign: 'middle' | 'top' | 'baseline', size: number): number {
  return valign === 'middle' ? 0.36 * size : valign === 'top' ? 0.72 * size : 0;
}

function shapeSvg(s: Shape): string {
  switch (s.type) {
    case 'polyline':
      return `<polyline points="${s.points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="none" stroke="${s.stroke}" stroke-width="${n(s.width)}" stroke-linejoin="round" stroke-linecap="round"/>`;
    case 'polygon':
      return `<polygon points="${s.points.map(([x, y]) => `${n(x)},${n(y)}`).join(' ')}" fill="${s.fill}"/>`;
    case 'circle':
      return `<circle cx="${n(s.cx)}" cy="${n(s.cy)}" r="${n(s.r)}" fill="${s.fill}"/>`;
    case 'rect':
      return `<rect x="${n(s.x)}" y="${n(s.y)}" width="${n(s.w)}" height="${n(s.h)}" fill="${s.fill ?? 'none'}"${s.stroke ? ` stroke="${s.stroke}" stroke-width="${n(s.strokeWidth ?? 1)}"` : ''}/>`;
    case 'text': {
      const dy = baselineOffset(s.valign, s.size);
      const anchor = s.anchor === 'start' ? '' : ` text-anchor="${s.anchor}"`;
      const weight = s.bold ? ' font-weight="bold"' : '';
      const body = escapeXml(s.text);
      if (s.vertical) {
        return `<text transform="translate(${n(s.x + dy)},${n(s.y)}) rotate(-90)" font-size="${n(s.size)}" fill="${s.color}"${anchor}${weight}>${body}</text>`;
      }
      return `<text x="${n(s.x)}" y="${n(s.y + dy)}" font-size="${n(s.size)}" fill="${s.color}"${anchor}${weight}>${body}</text>`;
    }
  }
}

/** A standalone SVG document of the scene (Helvetica/Arial text, no external resources). */
export function sceneToSvg(scene: Scene): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" font-family="Helvetica, Arial, 'Nimbus Sans', sans-serif">`,
    `<title>${escapeXml(scene.title)}</title>`,
    `<rect width="100%" height="100%" fill="${scene.background}"/>`,
    ...scene.shapes.map(shapeSvg),
    '</svg>',
    '',
  ].join('\n');
}
