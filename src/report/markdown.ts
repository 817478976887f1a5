import type { Figure } from './figures.js';
import { MISSING_TEXT, averageText, entryText, plainText, referenceText, tableFootnotes, type EntryText, type ReportModel } from './model.js';
import { SET_STATS_NOTE } from './sets.js';
import type { TableModel } from './table.js';

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function mdEntry(t: EntryText | undefined, emphasis: boolean): string {
  const text = plainText(t);
  return emphasis && t?.best ? `**${text}**` : text;
}

/** A table's header, column alignments and body cells as Markdown text; `emphasis` bolds the best entries and italicises baselines. */
export function markdownCells(t: TableModel, emphasis = true): { header: string[]; align: ('l' | 'r')[]; rows: string[][] } {
  const header = [...t.rowHeaders, ...t.columns.map((c) => (c.group ? `${c.header} (${c.group.toLowerCase()})` : c.header))];
  if (t.average.shown) header.push(t.average.label);
  const align = header.map((_, i) => (i < t.rowHeaders.length ? 'l' : 'r') as 'l' | 'r');
  const italic = (s: string): string => (emphasis ? `*${s}*` : s);
  const rows = t.rows.map((r) => {
    if (r.kind === 'result') {
      const labels = r.labels.map((l) => (r.baseline ? italic(mdEscape(l)) : mdEscape(l)));
      const cells = [...labels, ...t.columns.map((c) => mdEntry(entryText(r.entries[c.arch], t.digits, t.measure), emphasis))];
      if (t.average.shown) cells.push(mdEntry(averageText(r.average, t.digits, t.measure), emphasis));
      return cells;
    }
    const labels = t.rowHeaders.map((_, i) => (i === 0 ? italic(mdEscape(r.label)) : ''));
    const cells = [...labels, ...t.columns.map((c) => (r.values[c.arch] ? plainText(referenceText(r, c.arch, t.digits)) : ''))];
    if (t.average.shown) cells.push(r.average === undefined ? '' : (100 * r.average).toFixed(t.digits));
    return cells;
  });
  return { header: header.map(mdEscape), align, rows };
}

/** Header, alignment row and body as GitHub-flavoured Markdown lines (cells already escaped). */
function markdownLines(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${align.map((a) => (a === 'l' ? ':---' : '---:')).join('|')}|`, ...rows.map((cells) => `| ${cells.join(' | ')} |`)];
}

/** One table as GitHub-flavoured Markdown; the column group is named in each header (Markdown has no spanning headers). */
export function tableToMarkdown(t: TableModel): string {
  const { header, align, rows } = markdownCells(t);
  return `${markdownLines(header, align, rows).join('\n')}\n`;
}

function figureMd(f: Figure): string {
  return `![${f.title}](${f.png})\n\n*${f.caption}*${f.svg ? ` ([SVG](${f.svg}), [PDF](${f.pdf}))` : ''}\n`;
}

export const FIGURE_SECTIONS: { section: Figure['section']; title: string }[] = [
  { section: 'accuracy', title: 'Accuracy against IPC' },
  { section: 'sets', title: 'Image sets' },
  { section: 'cams', title: 'CAM overlays' },
  { section: 'curves', title: 'Loss curves' },
];

export function reportToMarkdown(m: ReportModel): string {
  const out: string[] = [`# ${m.title}`, ''];
  if (m.description) out.push(m.description, '');
  if (!m.complete) {
    out.push(
      `> **Partial report**: ${m.evaluations.present} of ${m.evaluations.expected} evaluations have results; what is missing is listed at the end. ` +
        `Missing entries show as ${MISSING_TEXT}, never as zero.`,
      '',
    );
  }
  for (const t of m.tables) {
    out.push(`## Table: ${t.name}`, '', t.title, '');
    if (t.groups) {
      out.push(t.groups.map((g) => `**${g.label || 'Other'}**: ${g.columns.map((a) => t.columns.find((c) => c.arch === a)?.header ?? a).join(', ')}`).join(' · '), '');
    }
    out.push(tableToMarkdown(t));
    const notes = tableFootnotes(t);
    if (notes.length > 0) out.push(...notes.map((n) => `- ${n}`), '');
  }
  if (m.setStats) {
    const { table, header, cells, keyColumns } = m.setStats;
    const align = header.map((_, i) => (i < keyColumns ? 'l' : 'r') as 'l' | 'r');
    out.push(`## Set statistics (rows of ${table})`, '', ...markdownLines(header.map(mdEscape), align, cells.map((row) => row.map(mdEscape))), '', SET_STATS_NOTE, '');
  }
  for (const { section, title } of FIGURE_SECTIONS) {
    const figs = m.figures.filter((f) => f.section === section);
    if (figs.length === 0) continue;
    out.push(`## ${title}`, '');
    for (const f of figs) out.push(figureMd(f));
  }
  if (m.notes.length > 0) out.push('## Notes', '', ...m.notes.map((n) => `- ${n}`), '');
  if (m.missing.length > 0) {
    out.push('## Missing results', '', '| what | cell | stage | reason |', '|---|---|---|---|');
    for (const x of m.missing) out.push(`| ${x.what} | ${mdEscape(x.where)} | ${mdEscape(x.label ?? x.input)} | ${mdEscape(x.reason)} |`);
    out.push('');
  }
  out.push(
    '## Files',
    '',
    '`report.html` (this report as one self-contained page), `report.tex` (LaTeX, with `tables/*.tex` to `\\input` in a paper), ' +
      '`results.csv` and `results.json` (every entry), `sets.csv` (every image set: cost and pixel statistics), `images/` and `plots/` (PNG; plots also as PDF and SVG).',
    '',
  );
  return out.join('\n');
}
