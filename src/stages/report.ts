import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { buildTable, formatStat, type EvalRecord } from '../report/aggregate.js';
import { tableToMarkdown } from '../report/markdown.js';

export interface ReportParams {
  name: string;
  description: string;
  report: { title?: string; rows?: string[] };
  cells: { coords: Record<string, unknown>; facts: Record<string, unknown>; set: string; evals: { arch: string; input: string }[] }[];
}

/** Reads every eval result of the spec and writes the tables (report.md, results.json, results.csv). */
export const reportStage: StageImpl<ReportParams> = {
  kind: 'report',
  version: STAGE_VERSIONS.report,
  needsTensors: false,
  async run(ctx) {
    const rowPaths = ctx.params.report.rows ?? ['distill.method', 'distill.ipc'];
    const records: EvalRecord[] = [];
    for (const cell of ctx.params.cells) {
      for (const e of cell.evals) {
        const view = ctx.inputs[e.input];
        const file = view ? join(view.dir, 'result.json') : undefined;
        const result = file && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { accuracies: number[] }) : undefined;
        records.push({ facts: cell.facts, arch: e.arch, accuracies: result?.accuracies });
      }
    }
    const table = buildTable(records, rowPaths);
    const title = ctx.params.report.title ?? ctx.params.name;
    const md = [
      `# ${title}`,
      '',
      ctx.params.description,
      '',
      'Test accuracy (%) of fresh networks trained on each image set: mean ± std over evaluation models and seeds.',
      '',
      tableToMarkdown(table),
    ].join('\n');
    writeFileSync(join(ctx.outDir, 'report.md'), md);
    writeFileSync(join(ctx.outDir, 'results.json'), `${JSON.stringify(table, null, 2)}\n`);
    const csv = ['row,arch,mean,std,n'];
    for (const row of table.rows) {
      for (const c of table.columns) {
        const s = row.cells[c];
        csv.push(`${JSON.stringify(row.key.join(' / '))},${c},${s ? s.mean : ''},${s ? s.std : ''},${s ? s.n : 0}`);
      }
    }
    writeFileSync(join(ctx.outDir, 'results.csv'), `${csv.join('\n')}\n`);
    for (const f of ['report.md', 'results.json', 'results.csv']) ctx.track.artifact(f);
    for (const row of table.rows) {
      for (const c of table.columns) {
        const s = row.cells[c];
        if (s) ctx.track.metric(`acc.${row.key.join('_')}.${c}`, s.mean);
      }
      ctx.log(`${row.key.join(' / ')}: ${table.columns.map((c) => `${c} ${formatStat(row.cells[c])}`).join(', ')}`);
    }
    ctx.progress.update(1, 1);
  },
};
