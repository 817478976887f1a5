import { formatStat, type Table } from './aggregate.js';

export function tableToMarkdown(table: Table): string {
  const header = [...table.rowPaths, ...table.columns, 'average'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of table.rows) {
    const cells = [...row.key.map((k) => String(k)), ...table.columns.map((c) => formatStat(row.cells[c])), formatStat(row.average)];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
