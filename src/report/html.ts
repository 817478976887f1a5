import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIGURE_SECTIONS } from './markdown.js';
import { MISSING_TEXT, averageText, entryText, referenceText, tableFootnotes, type EntryText, type ReportModel } from './model.js';
import { SET_STATS_NOTE } from './sets.js';
import type { TableModel } from './table.js';

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1b1b1b; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.partial-banner { background: #fff4d6; border: 1px solid #e8c766; padding: .6rem .9rem; border-radius: 4px; }
.table-wrap { overflow-x: auto; }
table.results, table.set-statistics { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
table.results caption { caption-side: top; text-align: left; color: #444; padding-bottom: .4rem; max-width: 60rem; }
table.results th, table.results td, table.set-statistics th, table.set-statistics td { padding: .25rem .6rem; text-align: right; white-space: nowrap; }
table.results th.key, table.results td.key, table.set-statistics .key { text-align: left; }
table.results thead tr:first-child th, table.set-statistics thead tr:first-child th { border-top: 2px solid #222; }
table.results thead tr:last-child th, table.set-statistics thead tr:last-child th { border-bottom: 1px solid #222; }
table.results th.group { border-bottom: 1px solid #888; text-align: center; }
table.results tbody tr:last-child td, table.set-statistics tbody tr:last-child td { border-bottom: 2px solid #222; }
table.results tr.baseline td.key { font-style: italic; }
table.results tr.reference td { color: #555; font-style: italic; }
table.results tr.reference:first-of-type td, table.results tr.result + tr.reference td { border-top: 1px solid #bbb; }
table.results td.best .mean { font-weight: 700; }
table.results td.missing { color: #b00; }
table.results .std { font-size: .78em; color: #555; }
table.results td.avg, table.results th.avg { border-left: 1px solid #ccc; }
ul.notes { color: #444; font-size: .9em; }
.figures { display: flex; flex-wrap: wrap; gap: 1.2rem; }
figure { margin: 0; max-width: 100%; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; image-rendering: auto; }
figure.set img, figure.cam img { image-rendering: pixelated; }
figcaption { font-size: .85em; color: #444; max-width: 640px; }
table.missing { border-collapse: collapse; font-size: .9em; } table.missing td, table.missing th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; }
`;

function entryHtml(t: EntryText | undefined, classes: string[], attrs = ''): string {
  const cls = [...classes, ...(t ? [t.best ? 'best' : '', t.partial ? 'partial' : ''] : ['missing'])].filter(Boolean).join(' ');
  const open = `<td${cls ? ` class="${cls}"` : ''}${attrs}>`;
  if (!t) return `${open}${MISSING_TEXT}</td>`;
  const std = t.std === undefined ? '' : ` <span class="std">± ${t.std}</span>`;
  return `${open}<span class="mean">${t.mean}</span>${std}${t.partial ? ' †' : ''}</td>`;
}

export function tableToHtml(t: TableModel): string {
  const head: string[] = [];
  const nKeys = t.rowHeaders.length;
  if (t.groups) {
    const cells = [`<th class="key" colspan="${nKeys}"></th>`, ...t.groups.map((g) => `<th class="group" colspan="${g.columns.length}">${escapeHtml(g.label)}</th>`)];
    if (t.average.shown) cells.push('<th class="avg"></th>');
    head.push(`<tr class="groups">${cells.join('')}</tr>`);
  }
  const names = [
    ...t.rowHeaders.map((h) => `<th class="key" scope="col">${escapeHtml(h)}</th>`),
    ...t.columns.map((c) => `<th scope="col" data-arch="${escapeHtml(c.arch)}"${c.group ? ` data-group="${escapeHtml(c.group)}"` : ''}>${escapeHtml(c.header)}</th>`),
  ];
  if (t.average.shown) names.push(`<th class="avg" scope="col">${escapeHtml(t.average.label)}</th>`);
  head.push(`<tr class="columns">${names.join('')}</tr>`);
  const body = t.rows.map((r) => {
    if (r.kind === 'result') {
      const keys = r.labels.map((l) => `<td class="key">${escapeHtml(l)}</td>`);
      const vals = t.columns.map((c) => {
        const e = r.entries[c.arch];
        const title = t.measure === 'difference' ? `${e.present} of ${e.expected} paired runs` : `${e.present} of ${e.expected} evaluations${e.stat ? `, n = ${e.stat.n} models` : ''}`;
        return entryHtml(entryText(e, t.digits, t.measure), [], ` data-arch="${escapeHtml(c.arch)}" title="${title}"`);
      });
      if (t.average.shown) vals.push(entryHtml(averageText(r.average, t.digits, t.measure), ['avg']));
      return `<tr class="result${r.baseline ? ' baseline' : ''}">${[...keys, ...vals].join('')}</tr>`;
    }
    const keys = [`<td class="key" colspan="${nKeys}">${escapeHtml(r.label)}</td>`];
    const vals = t.columns.map((c) => {
      const txt = referenceText(r, c.arch, t.digits);
      return txt ? entryHtml(txt, [], ` data-arch="${escapeHtml(c.arch)}"`) : `<td data-arch="${escapeHtml(c.arch)}"></td>`;
    });
    if (t.average.shown) vals.push(`<td class="avg">${r.average === undefined ? '' : (100 * r.average).toFixed(t.digits)}</td>`);
    return `<tr class="reference">${[...keys, ...vals].join('')}</tr>`;
  });
  return [
    `<div class="table-wrap"><table class="results" id="table-${escapeHtml(t.name)}" data-table="${escapeHtml(t.name)}">`,
    `<caption>${escapeHtml(t.title)}</caption>`,
    `<thead>${head.join('')}</thead>`,
    `<tbody>${body.join('\n')}</tbody>`,
    '</table></div>',
  ].join('\n');
}

function dataUri(file: string): string {
  return `data:image/png;base64,${readFileSync(file).toString('base64')}`;
}

/**
 * The report as one HTML file with inline CSS and every picture embedded as a data URI, so it can
 * be mailed or archived alone. `dir` is the report folder the figure paths are relative to.
 */
export function reportToHtml(m: ReportModel, dir: string): string {
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(m.title)}</title>`,
    `<style>${CSS}</style></head><body>`,
    `<h1>${escapeHtml(m.title)}</h1>`,
  ];
  if (m.description) out.push(`<p>${escapeHtml(m.description)}</p>`);
  if (!m.complete) {
    out.push(
      `<p class="partial-banner"><strong>Partial report</strong>: ${m.evaluations.present} of ${m.evaluations.expected} evaluations have results; ` +
        `the missing ones are <a href="#missing">listed below</a> and show as ${MISSING_TEXT} in the tables, never as zero.</p>`,
    );
  }
  for (const t of m.tables) {
    out.push(`<h2>Table: ${escapeHtml(t.name)}</h2>`, tableToHtml(t));
    const notes = tableFootnotes(t);
    if (notes.length > 0) out.push(`<ul class="notes">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`);
  }
  if (m.setStats) {
    const { table, header, cells, keyColumns } = m.setStats;
    const th = header.map((h, i) => `<th scope="col"${i < keyColumns ? ' class="key"' : ''}>${escapeHtml(h)}</th>`).join('');
    const body = cells.map((row) => `<tr>${row.map((c, i) => `<td${i < keyColumns ? ' class="key"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
    out.push(
      `<h2 id="set-statistics">Set statistics (rows of ${escapeHtml(table)})</h2>`,
      `<div class="table-wrap"><table class="set-statistics"><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`,
      `<ul class="notes"><li>${escapeHtml(SET_STATS_NOTE)}</li></ul>`,
    );
  }
  for (const { section, title } of FIGURE_SECTIONS) {
    const figs = m.figures.filter((f) => f.section === section && existsSync(join(dir, f.png)));
    if (figs.length === 0) continue;
    out.push(`<h2>${escapeHtml(title)}</h2>`, `<div class="figures">`);
    for (const f of figs) {
      const width = f.displayWidth ? ` width="${f.displayWidth}"` : '';
      const cls = section === 'sets' ? 'set' : section === 'cams' ? 'cam' : 'plot';
      out.push(`<figure class="${cls}" id="fig-${escapeHtml(f.id)}"><img src="${dataUri(join(dir, f.png))}" alt="${escapeHtml(f.title)}"${width}><figcaption>${escapeHtml(f.caption)}</figcaption></figure>`);
    }
    out.push('</div>');
  }
  if (m.notes.length > 0) out.push('<h2>Notes</h2>', `<ul class="notes">${m.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`);
  if (m.missing.length > 0) {
    out.push('<h2 id="missing">Missing results</h2>', '<table class="missing"><thead><tr><th>what</th><th>cell</th><th>stage</th><th>reason</th></tr></thead><tbody>');
    for (const x of m.missing) out.push(`<tr><td>${x.what}</td><td>${escapeHtml(x.where)}</td><td>${escapeHtml(x.label ?? x.input)}</td><td>${escapeHtml(x.reason)}</td></tr>`);
    out.push('</tbody></table>');
  }
  out.push('</body></html>', '');
  return out.join('\n');
}

