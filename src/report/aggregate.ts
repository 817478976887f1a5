/** Aggregation of evaluation results into table cells: mean, sample std and count. */
export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1); 0 for a single value. */
  std: number;
  n: number;
}

export function stat(values: number[]): Stat | undefined {
  if (values.length === 0) return undefined;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance), n: values.length };
}

export interface TableRow {
  /** Values of the row keys, in the order of the table's row paths. */
  key: (string | number | boolean | null)[];
  /** Per column (architecture label): accuracy statistics over models x seeds, or undefined if missing. */
  cells: Record<string, Stat | undefined>;
  /** Mean over the columns that are present, with the std of the per-column means. */
  average?: Stat;
  /** Columns without any result (stage failed or not run yet). */
  missing: string[];
}

export interface Table {
  rowPaths: string[];
  columns: string[];
  rows: TableRow[];
}

export interface EvalRecord {
  facts: Record<string, unknown>;
  arch: string;
  /** Accuracies in [0, 1], one per trained model; undefined when the result is missing. */
  accuracies: number[] | undefined;
}

/** Groups records into rows by `rowPaths`, columns by architecture, pooling every model of every seed. */
export function buildTable(records: EvalRecord[], rowPaths: string[]): Table {
  const columns: string[] = [];
  const rows = new Map<string, { key: TableRow['key']; values: Map<string, number[]>; seen: Set<string> }>();
  for (const r of records) {
    if (!columns.includes(r.arch)) columns.push(r.arch);
    const key = rowPaths.map((p) => (r.facts[p] ?? null) as TableRow['key'][number]);
    const id = JSON.stringify(key);
    let row = rows.get(id);
    if (!row) {
      row = { key, values: new Map(), seen: new Set() };
      rows.set(id, row);
    }
    row.seen.add(r.arch);
    if (r.accuracies) row.values.set(r.arch, [...(row.values.get(r.arch) ?? []), ...r.accuracies]);
  }
  const out: TableRow[] = [...rows.values()].map((row) => {
    const cells: Record<string, Stat | undefined> = {};
    for (const c of columns) cells[c] = stat(row.values.get(c) ?? []);
    const present = columns.filter((c) => cells[c] !== undefined);
    const means = present.map((c) => (cells[c] as Stat).mean);
    return { key: row.key, cells, average: present.length === columns.length ? stat(means) : undefined, missing: columns.filter((c) => cells[c] === undefined) };
  });
  return { rowPaths, columns, rows: out };
}

/** Percent with one decimal, as papers print accuracies: "97.4 ± 0.2". */
export function formatStat(s: Stat | undefined, missing = '—'): string {
  if (!s) return missing;
  return `${(100 * s.mean).toFixed(1)} ± ${(100 * s.std).toFixed(1)}`;
}
