import { stat, type Stat } from './aggregate.js';
import { cellValue, type CellData } from './collect.js';
import type { ReportConfig } from './config.js';
import { entryStatus, type AverageEntry, type Entry, type ResultRow, type TableModel } from './table.js';

const ARM = 'metadd.arm';
const TREATMENT = 'metadd';
const CONTROL = 'control';

/** The run a cell belongs to within its row: its values of the pooled paths (seed, by default). */
function runKey(cfg: ReportConfig, cell: CellData): string {
  return JSON.stringify(cfg.pool.map((p) => cellValue(cell, p) ?? null));
}

/** A row's cells by run; undefined when two of them are the same run (nothing to pair them by). */
function runsOf(cfg: ReportConfig, row: ResultRow, byIndex: ReadonlyMap<number, CellData>): Map<string, CellData> | undefined {
  const out = new Map<string, CellData>();
  for (const i of row.cells) {
    const cell = byIndex.get(i) as CellData;
    const k = runKey(cfg, cell);
    if (out.has(k)) return undefined;
    out.set(k, cell);
  }
  return out;
}

/** Mean test accuracy of one cell's evaluation models on `arch`, or undefined when it has no result. */
function cellAccuracy(cell: CellData, arch: string): number | undefined {
  const accs = cell.evals.find((e) => e.arch === arch)?.accuracies;
  return accs ? stat(accs)?.mean : undefined;
}

/**
 * The MetaDD effect table of a laid-out accuracy table: for every row of the MetaDD arm whose
 * control row (the same key with `metadd.arm: control`) is in the table, the difference MetaDD
 * minus control of each paired run (cells with the same values of the pooled paths, i.e. the same
 * seed: the same base set, evaluated with the same seeds), each side the mean of its evaluation
 * models; the entry is the mean and sample std of those differences over the runs. Pairing removes
 * what both arms share (the base set, the random subset drawn for the seed), which pooling every
 * model of every seed into one std does not. Undefined when the table has no such pair of rows; a
 * pair whose runs cannot be matched is left out with a note.
 */
export function effectTable(cfg: ReportConfig, table: TableModel, cells: readonly CellData[]): TableModel | undefined {
  const armAt = table.rowPaths.indexOf(ARM);
  if (armAt < 0) return undefined;
  const byIndex = new Map(cells.map((c) => [c.index, c]));
  const results = table.rows.filter((r): r is ResultRow => r.kind === 'result');
  const withoutArm = (key: unknown[]): string => JSON.stringify(key.filter((_, i) => i !== armAt));
  const controls = new Map(results.filter((r) => r.key[armAt] === CONTROL).map((r) => [withoutArm(r.key), r]));
  const notes: string[] = [];
  const rows: ResultRow[] = [];
  const averaged = table.average.shown ? table.average.columns : [];

  let candidates = 0;
  for (const treated of results.filter((r) => r.key[armAt] === TREATMENT)) {
    const control = controls.get(withoutArm(treated.key));
    if (!control) continue;
    candidates++;
    const label = treated.labels.filter((_, i) => i !== armAt).join(' / ');
    const treatedRuns = runsOf(cfg, treated, byIndex);
    const controlRuns = runsOf(cfg, control, byIndex);
    if (!treatedRuns || !controlRuns) {
      notes.push(`${label}: two cells of one arm share the pooled values (${cfg.pool.join(', ')}), so their runs cannot be paired; the row is left out.`);
      continue;
    }
    const pairs = [...treatedRuns].filter(([k]) => controlRuns.has(k)).map(([k, cell]) => [cell, controlRuns.get(k) as CellData] as const);
    const unpaired = treatedRuns.size + controlRuns.size - 2 * pairs.length;
    if (unpaired > 0) notes.push(`${label}: ${unpaired} run(s) of one arm have no counterpart in the other and are left out.`);

    const deltas = (arch: string): (number | undefined)[] =>
      pairs.map(([t, c]) => {
        const a = cellAccuracy(t, arch);
        const b = cellAccuracy(c, arch);
        return a === undefined || b === undefined ? undefined : a - b;
      });
    const entries: Record<string, Entry> = {};
    for (const col of table.columns) {
      const present = deltas(col.arch).filter((d): d is number => d !== undefined);
      const s = stat(present);
      entries[col.arch] = { stat: s, status: entryStatus(s, present.length, pairs.length), expected: pairs.length, present: present.length, best: false };
    }
    let average: AverageEntry | undefined;
    if (averaged.length > 0) {
      // Averaged per run first, so the spread is over runs (how much the cross-architecture gain varies), not over architectures.
      const perArch = averaged.map(deltas);
      const perRun = pairs.map((_, j) => perArch.map((d) => d[j])).filter((ds): ds is number[] => ds.every((d) => d !== undefined)).map((ds) => (stat(ds) as Stat).mean);
      const s = stat(perRun);
      average = { stat: s, status: entryStatus(s, perRun.length, pairs.length), present: perRun.length, expected: pairs.length, best: false };
      if (s) {
        const wins = perRun.filter((d) => d > 0).length;
        notes.push(`${label}: MetaDD above its control on ${table.average.label} in ${wins} of ${perRun.length} paired run(s).`);
      }
    }
    rows.push({ kind: 'result', id: `${treated.id}-effect`, key: treated.key.filter((_, i) => i !== armAt), labels: treated.labels.filter((_, i) => i !== armAt), baseline: false, entries, average, cells: [...treated.cells, ...control.cells] });
  }
  if (candidates === 0) return undefined;

  const pooled = cfg.pool.length > 0 ? cfg.pool.join(', ') : 'none';
  return {
    ...table,
    name: `${table.name}-effect`,
    title:
      `MetaDD minus its control arm (the same extra iterations without the MetaDD terms), in accuracy points: mean ± sample std over paired runs ` +
      `(same ${pooled}) of each run's difference, each arm the mean of its evaluation models. Positive: MetaDD helped.`,
    rowPaths: table.rowPaths.filter((_, i) => i !== armAt),
    rowHeaders: table.rowHeaders.filter((_, i) => i !== armAt),
    rows,
    measure: 'difference',
    complete: rows.every((r) => table.columns.every((c) => r.entries[c.arch].status === 'ok')),
    notes,
  };
}
