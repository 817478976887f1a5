import { archLabel, normalizeArch } from '../dag/arch.js';
import type { Architecture } from '../spec/types.generated.js';
import { pct, pooledStat, stat, type Stat } from './aggregate.js';
import { cellValue, uniqueEvals, type CellData } from './collect.js';
import { archHeader, bestWithin, matches, pathLabel, valueLabel, type ReportConfig, type TableConfig } from './config.js';

export type EntryStatus = 'ok' | 'partial' | 'missing';

export interface Entry {
  stat?: Stat;
  status: EntryStatus;
  /** Evaluations that feed this entry, and how many of them have a result. */
  expected: number;
  present: number;
  best: boolean;
}

export interface AverageEntry {
  /** Mean over architectures of the per-architecture means; std across architectures; n = architectures. */
  stat?: Stat;
  status: EntryStatus;
  /** Averaged columns with a value, of those the average is taken over. */
  present: number;
  expected: number;
  best: boolean;
}

export interface ResultRow {
  kind: 'result';
  id: string;
  key: unknown[];
  labels: string[];
  baseline: boolean;
  entries: Record<string, Entry>;
  average?: AverageEntry;
  /** Indices of the cells pooled into the row. */
  cells: number[];
}

export interface ReferenceRow {
  kind: 'reference';
  label: string;
  /** In [0, 1] like the computed rows. */
  values: Record<string, { mean: number; std?: number } | undefined>;
  average?: number;
  source?: string;
}

export type Row = ResultRow | ReferenceRow;

export interface Column {
  arch: string;
  header: string;
  group?: string;
}

export interface ColumnGroup {
  /** '' for columns outside every declared group. */
  label: string;
  columns: string[];
}

export interface TableModel {
  name: string;
  title: string;
  rowPaths: string[];
  rowHeaders: string[];
  columns: Column[];
  /** Undefined when the columns are not grouped. */
  groups?: ColumnGroup[];
  average: { shown: boolean; label: string; columns: string[]; mode: TableConfig['average'] };
  rows: Row[];
  digits: number;
  /**
   * 'accuracy': entries are test accuracies. 'difference': entries are paired differences in
   * accuracy points (src/report/effect.ts), printed with a sign, and the average's spread is over runs.
   */
  measure: 'accuracy' | 'difference';
  /** No entry missing or partial. */
  complete: boolean;
  notes: string[];
}

/** Status of an entry computed from `present` of its `expected` inputs. */
export function entryStatus(s: Stat | undefined, present: number, expected: number): EntryStatus {
  return !s ? 'missing' : present < expected ? 'partial' : 'ok';
}

function valueKey(v: unknown): string {
  return JSON.stringify(v ?? null);
}

/** Labels an auxiliary architecture as the eval columns would, with either head (auxiliaries always use 'gap'). */
function auxLabels(aux: unknown): string[] {
  if (typeof aux !== 'string' && (typeof aux !== 'object' || aux === null)) return [];
  const given = (typeof aux === 'string' ? { name: aux } : aux) as Record<string, unknown>;
  try {
    return (['flatten', 'gap'] as const).map((head) => archLabel(normalizeArch({ ...given, head } as Architecture)));
  } catch {
    // An architecture the zoo does not know: compare by its name only.
    return [String(given.name)];
  }
}

/** Swept axes that vary among `cells` and are neither row keys, pooled, nor columns. */
function autoRowPaths(cells: CellData[], declared: string[], pool: string[]): string[] {
  const out: string[] = [];
  for (const cell of cells) {
    for (const path of Object.keys(cell.coords)) {
      if (out.includes(path) || declared.includes(path) || pool.includes(path)) continue;
      if (path === 'eval.architectures' || path.startsWith('eval.architectures.')) continue;
      if (declared.some((d) => d.startsWith(`${path}.`))) continue;
      const values = new Set(cells.map((c) => valueKey(cellValue(c, path))));
      if (values.size > 1) out.push(path);
    }
  }
  return out;
}

/** Orders values of one path: listed values first (in order), then null, numbers ascending, other values by first appearance. */
function valueComparator(order: unknown[] | undefined, appearance: Map<string, number>): (a: unknown, b: unknown) => number {
  const listed = new Map((order ?? []).map((v, i) => [valueKey(v), i]));
  const rank = (v: unknown): [number, number] => {
    const k = valueKey(v);
    const l = listed.get(k);
    if (l !== undefined) return [0, l];
    if (v === null || v === undefined) return [1, 0];
    if (typeof v === 'number') return [2, v];
    return [3, appearance.get(k) ?? Number.MAX_SAFE_INTEGER];
  };
  return (a, b) => {
    const [ga, va] = rank(a);
    const [gb, vb] = rank(b);
    return ga !== gb ? ga - gb : va - vb;
  };
}

function resolveGroups(cfg: ReportConfig, table: TableConfig, cells: CellData[], columns: string[], notes: string[]): ColumnGroup[] | undefined {
  if (table.groups === 'none') return undefined;
  if (table.groups !== 'auto') {
    const grouped = new Set<string>();
    const groups: ColumnGroup[] = table.groups.map((g) => {
      const cols = g.columns.filter((c) => columns.includes(c) && !grouped.has(c));
      for (const c of cols) grouped.add(c);
      return { label: g.label, columns: cols };
    });
    const rest = columns.filter((c) => !grouped.has(c));
    if (rest.length > 0) groups.push({ label: '', columns: rest });
    return groups.filter((g) => g.columns.length > 0);
  }
  const active = cells.filter((c) => matches(cfg.auxiliaries.when, (p) => cellValue(c, p)));
  if (active.length === 0) return undefined;
  const seenLabels = new Set<string>();
  const seenNames = new Set<string>();
  const distinct = new Set<string>();
  let unknown = 0;
  for (const c of active) {
    const fact = cellValue(c, cfg.auxiliaries.path);
    if (Array.isArray(fact)) {
      for (const l of fact.flatMap(auxLabels)) seenLabels.add(l);
      distinct.add(valueKey(fact));
      continue;
    }
    // Without the fact, the metadd stage's own parameters name its auxiliaries, spelled as the model
    // zoo builds them (whose defaults can differ from the plan's labels): match those by name.
    const aux = c.set.stageParams?.aux;
    if (!Array.isArray(aux)) {
      unknown++;
      continue;
    }
    const names = aux.map((a) => String(typeof a === 'string' ? a : (a as { name?: unknown }).name));
    for (const n of names) seenNames.add(n);
    distinct.add(valueKey([...names].sort()));
  }
  if (distinct.size === 0) {
    notes.push(`Columns are not split into seen and unseen: the auxiliaries ('${cfg.auxiliaries.path}') of the MetaDD cells are unknown to the report.`);
    return undefined;
  }
  if (unknown > 0) notes.push(`The auxiliaries of ${unknown} MetaDD cell(s) are unknown (their image sets are missing); "seen" comes from the others.`);
  if (distinct.size > 1) notes.push('The MetaDD cells use different auxiliary networks; "seen" is the union of them.');
  const isSeen = (c: string): boolean => seenLabels.has(c) || seenNames.has(c.split('-')[0]);
  const seen = columns.filter(isSeen);
  const unseen = columns.filter((c) => !isSeen(c));
  return [
    { label: 'Seen', columns: seen },
    { label: 'Unseen', columns: unseen },
  ].filter((g) => g.columns.length > 0);
}

function rounded(x: number, digits: number): number {
  return Number(pct(x, digits));
}

/** Marks the best entries per column among non-baseline rows that share the `within` values. */
function markBest(rows: ResultRow[], columns: string[], within: number[], digits: number, withAverage: boolean): void {
  const blocks = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (r.baseline) continue;
    const id = JSON.stringify(within.map((i) => r.key[i] ?? null));
    blocks.set(id, [...(blocks.get(id) ?? []), r]);
  }
  for (const block of blocks.values()) {
    const pick = (get: (r: ResultRow) => { stat?: Stat; best: boolean } | undefined): void => {
      const cands = block.map(get).filter((e): e is { stat: Stat; best: boolean } => e?.stat !== undefined);
      if (cands.length < 2) return;
      const top = Math.max(...cands.map((e) => rounded(e.stat.mean, digits)));
      for (const e of cands) if (rounded(e.stat.mean, digits) === top) e.best = true;
    };
    for (const c of columns) pick((r) => r.entries[c]);
    if (withAverage) pick((r) => r.average);
  }
}

/**
 * Lays out one table: filters the cells, groups them into rows by the row paths (declared, plus the
 * swept axes that vary and are not pooled), pools every evaluation model of a row's cells into one
 * entry per architecture, orders rows and columns, and marks missing, partial and best entries.
 */
export function layoutTable(cfg: ReportConfig, table: TableConfig, allCells: CellData[]): TableModel {
  const notes: string[] = [];
  const cells = allCells.filter((c) => matches(table.where, (p) => cellValue(c, p)));
  const rowPaths = [...table.rows, ...autoRowPaths(cells, table.rows, cfg.pool)];
  for (const p of rowPaths) {
    if (cells.length > 0 && cells.every((c) => cellValue(c, p) === undefined)) {
      notes.push(`Row path '${p}' is unknown to the report (neither a cell fact nor a swept axis); its column is empty.`);
    }
  }

  const evaluated: string[] = [];
  for (const c of cells) for (const e of c.evals) if (!evaluated.includes(e.arch)) evaluated.push(e.arch);
  let columns = table.columns ? [...table.columns] : evaluated;
  for (const c of columns) if (!evaluated.includes(c)) notes.push(`Architecture '${c}' is listed but no cell evaluates it.`);

  const groups = resolveGroups(cfg, table, cells, columns, notes);
  if (groups) columns = groups.flatMap((g) => g.columns);
  const groupOf = new Map<string, string>();
  for (const g of groups ?? []) for (const c of g.columns) groupOf.set(c, g.label);

  const appearance = new Map<string, number>();
  const rowMap = new Map<string, { key: unknown[]; cells: CellData[] }>();
  for (const c of cells) {
    const key = rowPaths.map((p) => cellValue(c, p) ?? null);
    for (const v of key) if (!appearance.has(valueKey(v))) appearance.set(valueKey(v), appearance.size);
    const id = JSON.stringify(key);
    const r = rowMap.get(id) ?? { key, cells: [] };
    r.cells.push(c);
    rowMap.set(id, r);
  }

  const averageColumns = (table.averageColumns ?? columns).filter((c) => columns.includes(c));
  if (table.averageColumns && averageColumns.length < table.averageColumns.length) notes.push('Some average columns are not shown and are left out of the average.');
  // An average over one column would only repeat it.
  const averageShown = table.average !== 'none' && averageColumns.length > 1;

  const rows: ResultRow[] = [...rowMap].map(([id, r]) => {
    const entries: Record<string, Entry> = {};
    for (const col of columns) {
      const evals = uniqueEvals(r.cells.flatMap((c) => c.evals.filter((e) => e.arch === col)));
      const results = evals.filter((e) => e.accuracies).map((e) => e.accuracies as number[]);
      const s = pooledStat(results);
      entries[col] = { stat: s, status: entryStatus(s, results.length, evals.length), expected: evals.length, present: results.length, best: false };
    }
    let average: AverageEntry | undefined;
    if (averageShown) {
      const present = averageColumns.filter((c) => entries[c].stat);
      const complete = present.length === averageColumns.length;
      const anyPartial = present.some((c) => entries[c].status === 'partial');
      const use = complete || table.average === 'partial';
      const s = use ? stat(present.map((c) => (entries[c].stat as Stat).mean)) : undefined;
      const status: EntryStatus = !s ? 'missing' : complete && !anyPartial ? 'ok' : 'partial';
      average = { stat: s, status, present: present.length, expected: averageColumns.length, best: false };
    }
    const baseline = table.baselines.some((b) => matches(b, (p) => {
      const i = rowPaths.indexOf(p);
      return i >= 0 ? r.key[i] : cellValue(r.cells[0], p);
    }));
    return {
      kind: 'result' as const,
      id,
      key: r.key,
      labels: r.key.map((v, i) => valueLabel(cfg, rowPaths[i], v)),
      baseline,
      entries,
      average,
      cells: r.cells.map((c) => c.index),
    };
  });

  const comparators = rowPaths.map((p) => valueComparator(table.order[p], appearance));
  rows.sort((a, b) => {
    for (let i = 0; i < rowPaths.length; i++) {
      const d = comparators[i](a.key[i], b.key[i]);
      if (d !== 0) return d;
    }
    return 0;
  });

  if (table.best) {
    const within = bestWithin(table, rowPaths).map((p) => rowPaths.indexOf(p)).filter((i) => i >= 0);
    markBest(rows, columns, within, table.digits, averageShown);
  }

  const out: Row[] = [...rows];
  for (const ref of table.reference) {
    const values: ReferenceRow['values'] = {};
    for (const col of columns) {
      const v = ref.values[col];
      values[col] = v === undefined ? undefined : { mean: v / 100, std: ref.std?.[col] === undefined ? undefined : (ref.std[col] as number) / 100 };
    }
    for (const k of Object.keys(ref.values)) if (!columns.includes(k)) notes.push(`Reference '${ref.label}' has a value for '${k}', which is not a column.`);
    const avgValues = averageColumns.map((c) => values[c]?.mean);
    const average = averageShown && avgValues.every((v) => v !== undefined) ? (stat(avgValues as number[]) as Stat).mean : undefined;
    const refRow: ReferenceRow = { kind: 'reference', label: ref.label, values, average, source: ref.source };
    let at = out.length;
    if (ref.after) {
      const after = ref.after;
      let idx = -1;
      out.forEach((r, j) => {
        const hit = r.kind === 'result' && matches(after, (p) => {
          const i = rowPaths.indexOf(p);
          return i >= 0 ? r.key[i] : cellValue(allCells[r.cells[0]], p);
        });
        if (hit) idx = j;
      });
      if (idx >= 0) {
        at = idx + 1;
        while (at < out.length && out[at].kind === 'reference') at++;
      } else {
        notes.push(`Reference '${ref.label}': no row matches its 'after'; it is shown at the end.`);
      }
    }
    out.splice(at, 0, refRow);
  }

  const complete = rows.every((r) => columns.every((c) => r.entries[c].status === 'ok'));
  return {
    name: table.name,
    title: table.title ?? defaultTitle(table, groups !== undefined),
    rowPaths,
    rowHeaders: rowPaths.map((p) => pathLabel(cfg, p)),
    columns: columns.map((arch) => ({ arch, header: archHeader(cfg, arch), group: groupOf.get(arch) })),
    groups,
    average: { shown: averageShown, label: 'Avg.', columns: averageColumns, mode: table.average },
    rows: out,
    digits: table.digits,
    measure: 'accuracy',
    complete,
    notes,
  };
}

function defaultTitle(table: TableConfig, grouped: boolean): string {
  const seen = grouped && table.groups === 'auto' ? ' Seen: architectures used as MetaDD auxiliaries; unseen: the others.' : '';
  return `Test accuracy (%) of networks trained from scratch on each image set: mean ± sample std over evaluation models and seeds.${seen}`;
}
