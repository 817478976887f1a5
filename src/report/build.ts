import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, type ArtifactSource, type ReportParams } from './collect.js';
import { csvField } from './csv.js';
import { normalizeReport } from './config.js';
import { baselineTable, effectTable } from './effect.js';
import { reportSummary } from './summary.js';
import { buildFigures } from './figures.js';
import { reportToHtml } from './html.js';
import { reportToLatex, tableToLatex } from './latex.js';
import { reportToMarkdown } from './markdown.js';
import type { ReportModel } from './model.js';
import { setStatsCells, setStatsRows, setsCsv } from './sets.js';
import { layoutTable, type TableModel } from './table.js';

/**
 * Long format, one line per table entry (and per average): the row's raw key values, the column,
 * mean and std in percent, models pooled, evaluations present/expected, status and best flag.
 * Missing entries have empty numbers, never zeros.
 */
export function resultsCsv(tables: TableModel[]): string {
  const paths: string[] = [];
  for (const t of tables) for (const p of t.rowPaths) if (!paths.includes(p)) paths.push(p);
  // measure 'accuracy': n = evaluation models pooled, present/expected = evaluations; 'difference' (MetaDD
  // minus control): n = paired runs, present/expected = runs with both arms' results.
  const header = ['table', 'kind', 'measure', 'row', ...paths, 'arch', 'group', 'mean_pct', 'std_pct', 'n', 'present', 'expected', 'status', 'best'];
  const lines = [header.join(',')];
  const pctOf = (x: number | undefined): string => (x === undefined ? '' : String(Number((100 * x).toFixed(6))));
  for (const t of tables) {
    for (const r of t.rows) {
      if (r.kind === 'result') {
        const keyVals = paths.map((p) => {
          const i = t.rowPaths.indexOf(p);
          return i >= 0 ? r.key[i] : undefined;
        });
        const kind = r.baseline ? 'baseline' : 'result';
        for (const c of t.columns) {
          const e = r.entries[c.arch];
          lines.push([t.name, kind, t.measure, r.labels.join(' / '), ...keyVals, c.arch, c.group ?? '', pctOf(e.stat?.mean), pctOf(e.stat?.std), e.stat?.n ?? '', e.present, e.expected, e.status, e.best].map(csvField).join(','));
        }
        if (r.average) {
          const a = r.average;
          lines.push([t.name, kind, t.measure, r.labels.join(' / '), ...keyVals, 'average', '', pctOf(a.stat?.mean), pctOf(a.stat?.std), t.measure === 'difference' ? (a.stat?.n ?? '') : '', a.present, a.expected, a.status, a.best].map(csvField).join(','));
        }
      } else {
        for (const c of t.columns) {
          const v = r.values[c.arch];
          if (!v) continue;
          lines.push([t.name, 'reference', t.measure, r.label, ...paths.map(() => ''), c.arch, c.group ?? '', pctOf(v.mean), pctOf(v.std), '', '', '', 'reference', false].map(csvField).join(','));
        }
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Identifies the layout of a report folder (results.json and the files beside it); bump when it
 * changes, so that `metadd run` rebuilds a cached report of the older layout instead of copying it.
 * 2: summary.md. 3: set statistics (sets.csv, results.json `set_statistics`, a section of report.md/html).
 */
export const REPORT_FORMAT = 'metadd-report/3';

/** results.json: the whole model, entries as fractions in [0, 1] like eval result.json files. */
export function resultsJson(m: ReportModel): string {
  const tables = m.tables.map((t) => ({
    name: t.name,
    title: t.title,
    measure: t.measure,
    row_paths: t.rowPaths,
    columns: t.columns,
    groups: t.groups ?? null,
    average: t.average,
    complete: t.complete,
    notes: t.notes,
    rows: t.rows.map((r) =>
      r.kind === 'result'
        ? { kind: r.baseline ? 'baseline' : 'result', key: Object.fromEntries(t.rowPaths.map((p, i) => [p, r.key[i] ?? null])), labels: r.labels, entries: r.entries, average: r.average ?? null, cells: r.cells }
        : { kind: 'reference', label: r.label, values: r.values, average: r.average ?? null, source: r.source ?? null },
    ),
  }));
  return `${JSON.stringify(
    {
      format: REPORT_FORMAT,
      name: m.name,
      title: m.title,
      origin: m.origin,
      complete: m.complete,
      evaluations: m.evaluations,
      tables,
      set_statistics: m.setStats ? { table: m.setStats.table, rows: m.setStats.rows } : null,
      figures: m.figures,
      missing: m.missing,
      notes: m.notes,
    },
    null,
    2,
  )}\n`;
}

/** Files of a report folder besides the pictures, in the order they are written. */
export const REPORT_FILES = ['report.md', 'report.html', 'report.tex', 'results.csv', 'results.json', 'sets.csv', 'summary.md'];

/**
 * Builds the whole report from whatever `source` holds into `outDir`: tables (Markdown, HTML,
 * LaTeX, CSV, JSON), pictures and plots. Reads nothing but finished artifacts and computes no stage,
 * so it serves both the report stage and `metadd report` on a partial store.
 */
export async function buildReport(params: ReportParams, source: ArtifactSource, outDir: string, origin: ReportModel['origin']): Promise<ReportModel> {
  const cfg = normalizeReport(params.report);
  const data = await collect(params, source);
  const accuracy = cfg.tables.map((t) => layoutTable(cfg, t, data.cells));
  mkdirSync(outDir, { recursive: true });
  const { figures, notes } = buildFigures(cfg, accuracy, data.cells, outDir);
  // Each accuracy table is followed by its effect tables (MetaDD minus control, by default), when it
  // has rows of both arms, and by its comparison with the baseline rows, when the spec asks for one.
  const tables = accuracy.flatMap((t, i) => {
    const effects = cfg.tables[i].effect.map((pair) => effectTable(cfg, t, data.cells, pair));
    const versus = cfg.tables[i].versusBaseline;
    const vsBaseline = versus ? baselineTable(cfg, t, data.cells, versus) : undefined;
    return [t, ...effects, vsBaseline].filter((m): m is TableModel => m !== undefined);
  });
  // The sets behind the first table's rows: what they cost and where their pixels lie.
  const first = accuracy.at(0);
  const statsRows = first ? setStatsRows(first, data.cells) : [];
  const model: ReportModel = {
    name: params.name,
    title: cfg.title ?? params.name,
    description: params.description.trim(),
    tables,
    ...(first && statsRows.length > 0 ? { setStats: { table: first.name, rows: statsRows, keyColumns: first.rowHeaders.length, ...setStatsCells(first, statsRows) } } : {}),
    figures,
    missing: data.missing,
    notes,
    complete: data.missing.length === 0,
    evaluations: { expected: data.expectedEvals, present: data.presentEvals },
    origin,
  };
  mkdirSync(join(outDir, 'tables'), { recursive: true });
  for (const t of tables) writeFileSync(join(outDir, 'tables', `${t.name}.tex`), `% ${t.title}\n% Needs \\usepackage{booktabs}.\n${tableToLatex(t)}`);
  writeFileSync(join(outDir, 'report.md'), reportToMarkdown(model));
  writeFileSync(join(outDir, 'report.html'), reportToHtml(model, outDir));
  writeFileSync(join(outDir, 'report.tex'), reportToLatex(model));
  writeFileSync(join(outDir, 'results.csv'), resultsCsv(tables));
  writeFileSync(join(outDir, 'results.json'), resultsJson(model));
  writeFileSync(join(outDir, 'sets.csv'), setsCsv(data.cells));
  writeFileSync(join(outDir, 'summary.md'), reportSummary(model));
  return model;
}
