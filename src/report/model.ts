import { pct } from './aggregate.js';
import type { MissingItem } from './collect.js';
import type { Figure } from './figures.js';
import type { SetStatsRow } from './sets.js';
import type { AverageEntry, Entry, ReferenceRow, TableModel } from './table.js';

export interface SetStatsTable {
  /** The accuracy table whose rows it follows. */
  table: string;
  rows: SetStatsRow[];
  header: string[];
  /** The leading columns that hold the row's labels. */
  keyColumns: number;
  cells: string[][];
}

/** Everything a report page shows; the Markdown, HTML, LaTeX, CSV and JSON writers render this. */
export interface ReportModel {
  name: string;
  title: string;
  description: string;
  tables: TableModel[];
  /** Cost and pixel statistics of the image sets, by row of the first table (report/sets.ts). */
  setStats?: SetStatsTable;
  figures: Figure[];
  missing: MissingItem[];
  notes: string[];
  /** Every expected evaluation has a result. */
  complete: boolean;
  evaluations: { expected: number; present: number };
  /** 'stage': written by the report stage; 'store': rebuilt from whatever the store holds. */
  origin: 'stage' | 'store';
}

/** Marker of an entry computed from only some of its evaluations. */
export const PARTIAL_MARK = '†';
/** Text of an entry without a result: never a zero. */
export const MISSING_TEXT = '—';

export interface EntryText {
  mean: string;
  /** Undefined when there is no spread to show (an average, or a reference without std). */
  std?: string;
  best: boolean;
  partial: boolean;
}

/** A fraction as percentage points with an explicit sign (+1.2, −0.4, 0.0), for differences. */
export function signedPct(x: number, digits: number): string {
  const text = pct(x, digits);
  if (Number(text) === 0) return pct(0, digits);
  return x > 0 ? `+${text}` : `−${text.slice(1)}`;
}

function meanText(x: number, digits: number, measure: TableModel['measure']): string {
  return measure === 'difference' ? signedPct(x, digits) : pct(x, digits);
}

export function entryText(e: Entry | undefined, digits: number, measure: TableModel['measure'] = 'accuracy'): EntryText | undefined {
  if (!e?.stat) return undefined;
  // One run has no spread: print the mean alone rather than a "± 0.0" that reads as a measured zero.
  return { mean: meanText(e.stat.mean, digits, measure), std: e.stat.n > 1 ? pct(e.stat.std, digits) : undefined, best: e.best, partial: e.status === 'partial' };
}

/**
 * The cross-architecture average. Accuracy tables print it without a spread (its std would be across
 * architectures, not runs); difference tables average each run first, so their std is over runs.
 */
export function averageText(a: AverageEntry | undefined, digits: number, measure: TableModel['measure'] = 'accuracy'): EntryText | undefined {
  if (!a?.stat) return undefined;
  const std = measure === 'difference' && a.stat.n > 1 ? pct(a.stat.std, digits) : undefined;
  return { mean: meanText(a.stat.mean, digits, measure), std, best: a.best, partial: a.status === 'partial' };
}

export function referenceText(r: ReferenceRow, arch: string, digits: number): EntryText | undefined {
  const v = r.values[arch];
  if (!v) return undefined;
  return { mean: pct(v.mean, digits), std: v.std === undefined ? undefined : pct(v.std, digits), best: false, partial: false };
}

export function plainText(t: EntryText | undefined): string {
  if (!t) return MISSING_TEXT;
  return `${t.mean}${t.std === undefined ? '' : ` ± ${t.std}`}${t.partial ? ` ${PARTIAL_MARK}` : ''}`;
}

/** Footnotes under a table: partial entries, partial averages and references with a source. */
export function tableFootnotes(t: TableModel): string[] {
  const out: string[] = [];
  const results = t.rows.filter((r) => r.kind === 'result');
  if (results.some((r) => t.columns.some((c) => r.entries[c.arch].status === 'partial'))) {
    out.push(`${PARTIAL_MARK} Partial entry: computed from only some of its evaluations (the others are missing).`);
  }
  if (results.some((r) => r.average?.status === 'partial')) {
    out.push(`${PARTIAL_MARK} on ${t.average.label}: average over the architectures that have a result, or over partial entries.`);
  }
  if (t.average.shown) {
    const over = t.average.columns.length === t.columns.length ? 'every architecture' : t.average.columns.map((a) => t.columns.find((c) => c.arch === a)?.header ?? a).join(', ');
    if (t.measure === 'difference') {
      out.push(`${t.average.label}: mean ± std over paired runs of each run's mean difference over ${over}; a run missing one of them is left out (${PARTIAL_MARK}).`);
    } else {
      out.push(`${t.average.label}: mean of the per-architecture means over ${over}${t.average.mode === 'complete' ? ', shown only when all of them are present' : ''}.`);
    }
  }
  if (results.some((r) => r.baseline)) out.push('Baseline rows are in italics and never marked best.');
  for (const r of t.rows) if (r.kind === 'reference') out.push(`${r.label}: published numbers${r.source ? ` from ${r.source}` : ''}, typed into the spec; not computed here.`);
  return [...out, ...t.notes];
}
