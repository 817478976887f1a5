import { stat, type Stat } from './aggregate.js';
import { cellValue, type CellData } from './collect.js';
import { DEFAULT_EFFECT, matches, type Arm, type ArmPair, type ReportConfig, type VersusBaseline } from './config.js';
import { signedPct } from './model.js';
import { armIgnores } from '../spec/arm-settings.js';
import { entryStatus, type AverageEntry, type Entry, type ResultRow, type TableModel } from './table.js';

const ARM = 'metadd.arm';

/** How an arm is named in the notes, as the subject ("MetaDD above ...") and as what it is compared with ("... above its control"). */
const ARM_SUBJECT: Record<Arm, string> = { metadd: 'MetaDD', control: 'the control arm', none: 'the base set' };
const ARM_OBJECT: Record<Arm, string> = { metadd: 'its MetaDD arm', control: 'its control', none: 'its base set' };
/** How an arm is described in an effect table's title. */
const ARM_TITLE: Record<Arm, string> = {
  metadd: 'MetaDD (the base method with the MetaDD terms)',
  control: 'the control arm (the same iterations without the MetaDD terms)',
  none: 'the base set',
};

/** The run a cell belongs to within its row: its values of the pooled paths (seed, by default). */
function runKey(cfg: ReportConfig, cell: CellData): string {
  return JSON.stringify(cfg.pool.map((p) => cellValue(cell, p) ?? null));
}

/** A run's name in notes: its pooled values, e.g. "seed 0". */
function runLabel(cfg: ReportConfig, key: string): string {
  const values = JSON.parse(key) as unknown[];
  return cfg.pool.map((p, i) => `${p} ${typeof values[i] === 'string' ? (values[i] as string) : JSON.stringify(values[i])}`).join(', ');
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

/** A row's name in notes: its labels joined, without the paths that do not apply to it (shown as '–' in the table). */
function noteLabel(key: readonly unknown[], labels: readonly string[]): string {
  const applicable = labels.filter((_, i) => key[i] !== null && key[i] !== undefined);
  return (applicable.length > 0 ? applicable : labels).join(' / ');
}

/** A row compared with the row it is measured against, and how the comparison row is shown. */
interface RowPair {
  treated: ResultRow;
  reference: ResultRow;
  /** Who wins, in the won-runs note, e.g. "MetaDD" ('' for the row itself). */
  subject: string;
  /** What `treated` is compared with, in the notes, e.g. "its control". */
  against: string;
  /** Also note runs of `reference` without a counterpart (MetaDD and control arms should have the same runs; a baseline may have more). */
  symmetric: boolean;
  /** The difference row's key and labels (its name in notes is derived from them, e.g. "DM / 10"). */
  key: unknown[];
  labels: string[];
}

/**
 * One row of paired differences: treated minus reference of each paired run (cells with the same
 * values of the pooled paths, i.e. the same seed), each side the mean of its evaluation models; per
 * column the mean and sample std over the runs. Pairing removes what both rows share within a run
 * (the base set, the random subset drawn for the seed), which pooling every model of every seed into
 * one std does not. Undefined (with a note) when a row's runs cannot be told apart.
 */
function pairedRow(cfg: ReportConfig, table: TableModel, byIndex: ReadonlyMap<number, CellData>, pair: RowPair, notes: string[]): ResultRow | undefined {
  const { treated, reference } = pair;
  const label = noteLabel(pair.key, pair.labels);
  const treatedRuns = runsOf(cfg, treated, byIndex);
  const referenceRuns = runsOf(cfg, reference, byIndex);
  if (!treatedRuns || !referenceRuns) {
    notes.push(`${label}: two cells of one row share the pooled values (${cfg.pool.join(', ')}), so its runs cannot be paired; the row is left out.`);
    return undefined;
  }
  const paired = [...treatedRuns.keys()].filter((k) => referenceRuns.has(k));
  const pairs = paired.map((k) => [treatedRuns.get(k) as CellData, referenceRuns.get(k) as CellData] as const);
  const unpaired = treatedRuns.size - pairs.length + (pair.symmetric ? referenceRuns.size - pairs.length : 0);
  if (unpaired > 0) {
    const whose = pair.symmetric ? 'of one arm have no counterpart in the other' : `have no counterpart in ${pair.against}`;
    notes.push(`${label}: ${unpaired} run(s) ${whose} and are left out.`);
  }

  const deltas = (arch: string): (number | undefined)[] =>
    pairs.map(([t, r]) => {
      const a = cellAccuracy(t, arch);
      const b = cellAccuracy(r, arch);
      return a === undefined || b === undefined ? undefined : a - b;
    });
  const entries: Record<string, Entry> = {};
  const columnWins: string[] = [];
  for (const col of table.columns) {
    const present = deltas(col.arch).filter((d): d is number => d !== undefined);
    const s = stat(present);
    entries[col.arch] = { stat: s, status: entryStatus(s, present.length, pairs.length), expected: pairs.length, present: present.length, best: false };
    if (present.length > 0) columnWins.push(`${col.header} ${present.filter((d) => d > 0).length} of ${present.length}`);
  }
  // Whether a column's mean comes from every run or from one: with a single run the entries already say it.
  if (pairs.length > 1 && columnWins.length > 0) {
    notes.push(`${label}: ${pair.subject ? `${pair.subject} ` : ''}above ${pair.against}, per column, in: ${columnWins.join('; ')} paired run(s).`);
  }
  let average: AverageEntry | undefined;
  const averaged = table.average.shown ? table.average.columns : [];
  if (averaged.length > 0) {
    // Averaged per run first, so the spread is over runs (how much the cross-architecture gain varies), not over architectures.
    const perArch = averaged.map(deltas);
    const runs = paired
      .map((run, j) => ({ run, ds: perArch.map((d) => d[j]) }))
      .filter((r): r is { run: string; ds: number[] } => r.ds.every((d) => d !== undefined))
      .map(({ run, ds }) => ({ run, mean: (stat(ds) as Stat).mean }));
    const perRun = runs.map((r) => r.mean);
    const s = stat(perRun);
    average = { stat: s, status: entryStatus(s, perRun.length, pairs.length), present: perRun.length, expected: pairs.length, best: false };
    if (s) {
      const wins = perRun.filter((d) => d > 0).length;
      // Each run's difference, so a reader can see whether a mean comes from every run or from one.
      const each = cfg.pool.length > 0 ? ` (${runs.map((r) => `${runLabel(cfg, r.run)}: ${signedPct(r.mean, table.digits)}`).join('; ')})` : '';
      notes.push(`${label}: ${pair.subject ? `${pair.subject} ` : ''}above ${pair.against} on ${table.average.label} in ${wins} of ${perRun.length} paired run(s)${each}.`);
    }
  }
  return { kind: 'result', id: `${treated.id}-vs-${reference.id}`, key: pair.key, labels: pair.labels, baseline: false, entries, average, cells: [...treated.cells, ...reference.cells] };
}

function differenceTable(table: TableModel, name: string, title: string, rowPaths: string[], rowHeaders: string[], rows: ResultRow[], notes: string[]): TableModel {
  return {
    ...table,
    name,
    title,
    rowPaths,
    rowHeaders,
    rows,
    measure: 'difference',
    complete: rows.every((r) => table.columns.every((c) => r.entries[c.arch].status === 'ok')),
    notes,
  };
}

/**
 * What a difference is averaged over: the runs pooled into a row (each paired with the reference of the
 * same pooled values, `why` saying more), or, with report.pool empty, the single run of each row.
 */
function pairedRunsText(cfg: ReportConfig, why = ''): string {
  return cfg.pool.length > 0 ? `paired runs (same ${cfg.pool.join(', ')}${why})` : 'the one run of each row (report.pool is empty: nothing pooled)';
}

function isDefaultEffect(pair: ArmPair): boolean {
  return pair[0] === DEFAULT_EFFECT[0] && pair[1] === DEFAULT_EFFECT[1];
}

/** What the effect table of `pair` (and its rows' ids) append to the table's name: `<table>-effect` for MetaDD against its control, `<table>-effect-<arm>-<minus arm>` otherwise. */
function effectSuffix(pair: ArmPair): string {
  return isDefaultEffect(pair) ? 'effect' : `effect-${pair[0]}-${pair[1]}`;
}

/**
 * An effect table of a laid-out accuracy table: for every row of the arm `pair[0]` whose row of the
 * arm `pair[1]` (the same key with that `metadd.arm`) is in the table, the first minus the second
 * of each paired run; by default MetaDD minus its control. Undefined when the table has no such
 * pair of rows.
 */
export function effectTable(cfg: ReportConfig, table: TableModel, cells: readonly CellData[], pair: ArmPair = DEFAULT_EFFECT): TableModel | undefined {
  const armAt = table.rowPaths.indexOf(ARM);
  if (armAt < 0) return undefined;
  const [arm, minus] = pair;
  const suffix = effectSuffix(pair);
  const byIndex = new Map(cells.map((c) => [c.index, c]));
  const results = table.rows.filter((r): r is ResultRow => r.kind === 'result');
  const withoutArm = <T>(values: T[]): T[] => values.filter((_, i) => i !== armAt);
  // Settings either arm never reads (every MetaDD setting of the base set, the weights of the control
  // arm) do not tell the rows apart: each row is paired whatever the other set them to.
  const compared = table.rowPaths.map((p, i) => i !== armAt && !armIgnores(minus, p) && !armIgnores(arm, p));
  const matchKey = (r: ResultRow): string => JSON.stringify(r.key.filter((_, i) => compared[i]));
  const references = new Map<string, ResultRow[]>();
  for (const r of results.filter((row) => row.key[armAt] === minus)) references.set(matchKey(r), [...(references.get(matchKey(r)) ?? []), r]);
  const notes: string[] = [];
  const rows: ResultRow[] = [];
  let candidates = 0;
  for (const treated of results.filter((r) => r.key[armAt] === arm)) {
    const key = withoutArm(treated.key);
    const found = references.get(matchKey(treated)) ?? [];
    if (found.length === 0) continue;
    candidates++;
    if (found.length > 1) {
      notes.push(`${noteLabel(key, withoutArm(treated.labels))}: ${found.length} rows of ${ARM_SUBJECT[minus]} agree with it (${found.map((b) => noteLabel(withoutArm(b.key), withoutArm(b.labels))).join('; ')}); the row is left out.`);
      continue;
    }
    const reference = found[0];
    const row = pairedRow(cfg, table, byIndex, { treated, reference, subject: ARM_SUBJECT[arm], against: ARM_OBJECT[minus], symmetric: true, key, labels: withoutArm(treated.labels) }, notes);
    if (row) rows.push({ ...row, id: `${treated.id}-${suffix}` });
  }
  if (candidates === 0) return undefined;
  const what = `${ARM_TITLE[arm].charAt(0).toUpperCase()}${ARM_TITLE[arm].slice(1)} minus ${ARM_TITLE[minus]}`;
  const title =
    `${what}, in accuracy points: mean ± sample std over ${pairedRunsText(cfg)} of each run's difference, ` +
    `each arm the mean of its evaluation models. Positive: ${isDefaultEffect(pair) ? 'MetaDD helped' : `${ARM_SUBJECT[arm]} is higher`}.`;
  return differenceTable(table, `${table.name}-${suffix}`, title, withoutArm(table.rowPaths), withoutArm(table.rowHeaders), rows, notes);
}

/**
 * The comparison of every non-baseline row with its baseline row (`versus_baseline` of the table):
 * the baseline row that agrees with it on `match` (and matches `baseline`), paired by run, so that a
 * method is measured against the random subset drawn for the same seed. Undefined when the table
 * has no baseline row or no other row. A row with no baseline row, or with several, is left out with
 * a note.
 */
export function baselineTable(cfg: ReportConfig, table: TableModel, cells: readonly CellData[], versus: VersusBaseline): TableModel | undefined {
  const byIndex = new Map(cells.map((c) => [c.index, c]));
  const results = table.rows.filter((r): r is ResultRow => r.kind === 'result');
  const notes: string[] = [];
  const unknown = versus.match.filter((p) => !table.rowPaths.includes(p));
  if (unknown.length > 0) notes.push(`versus_baseline: ${unknown.join(', ')} is not a row path of this table (${table.rowPaths.join(', ')}); rows are matched on the others.`);
  const matchAt = versus.match.map((p) => table.rowPaths.indexOf(p)).filter((i) => i >= 0);
  const matchKey = (r: ResultRow): string => JSON.stringify(matchAt.map((i) => r.key[i] ?? null));
  const qualifies = (r: ResultRow): boolean => r.cells.every((i) => matches(versus.baseline, (p) => cellValue(byIndex.get(i) as CellData, p)));
  const baselines = results.filter((r) => r.baseline && qualifies(r));
  const treatedRows = results.filter((r) => !r.baseline);
  if (baselines.length === 0 || treatedRows.length === 0) return undefined;

  const rows: ResultRow[] = [];
  for (const treated of treatedRows) {
    const candidates = baselines.filter((b) => matchKey(b) === matchKey(treated));
    if (candidates.length !== 1) {
      const label = noteLabel(treated.key, treated.labels);
      const which = candidates.length === 0 ? 'no baseline row agrees with it' : `${candidates.length} baseline rows agree with it (${candidates.map((b) => noteLabel(b.key, b.labels)).join('; ')})`;
      notes.push(`${label}: ${which} on ${versus.match.join(', ')}; the row is left out (add a path to versus_baseline.match, or narrow versus_baseline.baseline).`);
      continue;
    }
    const reference = candidates[0];
    const row = pairedRow(cfg, table, byIndex, { treated, reference, subject: '', against: noteLabel(reference.key, reference.labels), symmetric: false, key: treated.key, labels: treated.labels }, notes);
    if (row) rows.push(row);
  }
  const title =
    `Each row minus its baseline row (the one that agrees with it on ${versus.match.join(', ')}), in accuracy points: mean ± sample std over ` +
    `${pairedRunsText(cfg, ': the baseline drawn for the same seed')} of each run's difference, each side the mean of its evaluation models. Positive: above the baseline.`;
  return differenceTable(table, `${table.name}-vs-baseline`, title, table.rowPaths, table.rowHeaders, rows, notes);
}
