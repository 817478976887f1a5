import { markdownTable } from 'markdown-table';
import { markdownCells } from './markdown.js';
import type { ReportModel } from './model.js';
import type { TableModel } from './table.js';

/** The first accuracy table and the paired tables built from it (effect tables, the comparison with the baseline). */
function firstGroup(tables: readonly TableModel[]): TableModel[] {
  const next = tables.findIndex((t, i) => i > 0 && t.measure === 'accuracy');
  return tables.slice(0, next < 0 ? tables.length : next);
}

/**
 * What `metadd run` and `metadd report` print at the end (summary.md in the report folder): the
 * report's first table and its paired tables as column-aligned Markdown, with the paired tables'
 * notes (runs won, each run's difference), so the answer is on the terminal without opening a file.
 */
export function reportSummary(m: ReportModel): string {
  const out: string[] = [];
  const shown = firstGroup(m.tables);
  for (const t of shown) {
    const { header, align, rows } = markdownCells(t, false);
    out.push(`${t.name}: ${t.title}`, '', markdownTable([header, ...rows], { align }), '');
    if (t.measure === 'difference' && t.notes.length > 0) out.push(...t.notes.map((n) => `- ${n}`), '');
  }
  const more = m.tables.length - shown.length;
  if (more > 0) out.push(`(${more} more table(s) in the report)`, '');
  return `${out.join('\n').trimEnd()}\n`;
}
