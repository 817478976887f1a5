import type { Report, ReportFigures, ReportReference, ReportTable } from '../spec/types.generated.js';

/**
 * The `report:` section with every default applied. The report stage receives the section as the
 * spec wrote it (or {} when absent), so defaults are applied here as well as by the schema: both
 * must agree (schemas/experiment.schema.json, `$defs/report*`).
 */
export interface ReportConfig {
  title?: string;
  rows: string[];
  pool: string[];
  auxiliaries: { path: string; when: Match };
  labels: { paths: Record<string, string>; values: Record<string, Record<string, string>>; architectures: Record<string, string> };
  tables: TableConfig[];
  figures: Required<ReportFigures>;
}

export type Match = Record<string, unknown>;

export interface TableConfig {
  name: string;
  title?: string;
  metric: 'test_accuracy';
  where?: Match;
  /** Declared row paths (swept axes are appended later, once the cells are known). */
  rows: string[];
  order: Record<string, unknown[]>;
  baselines: Match[];
  columns?: string[];
  groups: 'auto' | 'none' | { label: string; columns: string[] }[];
  average: 'complete' | 'partial' | 'none';
  averageColumns?: string[];
  best: boolean;
  bestWithin?: string[];
  digits: number;
  reference: ReportReference[];
  /** The arm pairs whose effect tables follow the table (src/report/effect.ts); empty: none. */
  effect: ArmPair[];
  /** Follow the table with each row's difference from its baseline row (src/report/effect.ts). */
  versusBaseline?: VersusBaseline;
}

/**
 * A report section that the schema accepts but that cannot be laid out (two tables with one name, an
 * arm compared with itself). `parts` is where it is in the spec, so the compiler can point at the line.
 */
export class ReportConfigError extends Error {
  readonly parts: string[];
  constructor(parts: string[], message: string) {
    super(`report: ${message}`);
    this.name = 'ReportConfigError';
    this.parts = parts;
  }
}

export type Arm = 'none' | 'control' | 'metadd';
/** [arm, minus arm]: the effect table of `arm` minus `minus arm`, paired by run. */
export type ArmPair = readonly [Arm, Arm];

/** What `effect: true` compares: MetaDD against its control arm. */
export const DEFAULT_EFFECT: ArmPair = ['metadd', 'control'];

export interface VersusBaseline {
  /** Row paths on which a row and its baseline row agree. */
  match: string[];
  /** Which baseline rows qualify (default: every baseline row). */
  baseline?: Match;
}

export const DEFAULT_ROWS = ['distill.method', 'distill.ipc'];
export const DEFAULT_POOL = ['seed'];
export const DEFAULT_AUX_PATH = 'metadd.aux';
export const DEFAULT_AUX_WHEN: Match = { 'metadd.arm': ['metadd', 'control'] };
const DEFAULT_BASELINES: Match[] = [{ 'distill.method': ['random', 'whole'] }];
/** Paths that name what is compared, not the setting it is compared at (see `best_within`). */
const COMPETITORS = ['distill.method', 'metadd.arm'];

/** Built-in row orders: baselines first, then the MetaDD arms from the plain base set upwards. */
const DEFAULT_ORDER: Record<string, unknown[]> = {
  'distill.method': ['random'],
  'metadd.arm': ['none', 'control', 'metadd'],
};

const PATH_LABELS: Record<string, string> = {
  'distill.method': 'Method',
  'distill.ipc': 'IPC',
  'metadd.arm': 'MetaDD',
  'dataset.name': 'Dataset',
  seed: 'Seed',
};

const VALUE_LABELS: Record<string, Record<string, string>> = {
  'distill.method': { random: 'Random', whole: 'Whole dataset', dc: 'DC', dsa: 'DSA', dm: 'DM', mtt: 'MTT', sre2l: 'SRe2L' },
  'metadd.arm': { none: 'base', control: '+K iters', metadd: '+MetaDD' },
  'dataset.name': { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10', cifar100: 'CIFAR-100' },
};

const ARCH_LABELS: Record<string, string> = {
  convnet: 'ConvNet',
  mlp: 'MLP',
  lenet: 'LeNet',
  alexnet: 'AlexNet',
  vgg11: 'VGG-11',
  vgg19: 'VGG-19',
  resnet18: 'ResNet-18',
  resnet50: 'ResNet-50',
  swin: 'Swin-S',
};

function effectPairs(effect: NonNullable<ReportTable['effect']>, table: string, index: number): ArmPair[] {
  if (typeof effect === 'boolean') return effect ? [DEFAULT_EFFECT] : [];
  return effect.pairs.map(([arm, minus], j) => {
    if (arm === minus) {
      throw new ReportConfigError(['report', 'tables', String(index), 'effect', 'pairs', String(j)], `table '${table}': effect pair [${arm}, ${minus}] compares an arm with itself; e.g. [metadd, control] or [control, none]`);
    }
    return [arm, minus] as const;
  });
}

function defaultTable(t: Partial<ReportTable>, rows: string[], index: number): TableConfig {
  const groups = t.groups ?? 'auto';
  const name = t.name ?? (index === 0 ? 'main' : `table${index + 1}`);
  return {
    name,
    title: t.title,
    metric: t.metric ?? 'test_accuracy',
    where: t.where,
    rows: t.rows ?? rows,
    order: { ...DEFAULT_ORDER, ...(t.order as Record<string, unknown[]> | undefined) },
    baselines: (t.baselines as Match[] | undefined) ?? DEFAULT_BASELINES,
    columns: t.columns,
    groups: typeof groups === 'string' ? groups : groups.map((g) => ({ label: g.label, columns: [...g.columns] })),
    average: t.average ?? 'complete',
    averageColumns: t.average_columns,
    best: t.best ?? true,
    bestWithin: t.best_within,
    digits: t.digits ?? 1,
    reference: t.reference ?? [],
    effect: effectPairs(t.effect ?? true, name, index),
    versusBaseline: t.versus_baseline ? { match: [...t.versus_baseline.match], baseline: t.versus_baseline.baseline as Match | undefined } : undefined,
  };
}

export function normalizeReport(report: Report | undefined): ReportConfig {
  const r = report ?? {};
  const rows = r.rows ?? DEFAULT_ROWS;
  const tables = (r.tables ?? [{ name: 'main' }]).map((t, i) => defaultTable(t, rows, i));
  const seen = new Set<string>();
  tables.forEach((t, i) => {
    if (seen.has(t.name)) throw new ReportConfigError(['report', 'tables', String(i), 'name'], `two tables are named '${t.name}'`);
    seen.add(t.name);
  });
  const f = r.figures ?? {};
  return {
    title: r.title,
    rows,
    pool: r.pool ?? DEFAULT_POOL,
    auxiliaries: { path: r.auxiliaries?.path ?? DEFAULT_AUX_PATH, when: (r.auxiliaries?.when as Match | undefined) ?? DEFAULT_AUX_WHEN },
    labels: {
      paths: { ...PATH_LABELS, ...definedEntries(r.labels?.paths) },
      values: mergeValueLabels(VALUE_LABELS, r.labels?.values),
      architectures: { ...ARCH_LABELS, ...definedEntries(r.labels?.architectures) },
    },
    tables,
    figures: {
      image_grids: f.image_grids ?? 'row',
      cams: f.cams ?? true,
      accuracy_vs: f.accuracy_vs === undefined ? 'distill.ipc' : f.accuracy_vs,
      loss_curves: f.loss_curves ?? true,
      max_series: f.max_series ?? 12,
    },
  };
}

function definedEntries(o: Record<string, string | undefined> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(o ?? {}).filter((e): e is [string, string] => e[1] !== undefined));
}

function mergeValueLabels(
  base: Record<string, Record<string, string>>,
  extra: Record<string, Record<string, string | undefined> | undefined> | undefined,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [k, v] of Object.entries(base)) out[k] = { ...v };
  for (const [k, v] of Object.entries(extra ?? {})) out[k] = { ...out[k], ...definedEntries(v) };
  return out;
}

/** `best_within` default: the row paths that are settings rather than competitors. */
export function bestWithin(table: TableConfig, rowPaths: string[]): string[] {
  return table.bestWithin ?? rowPaths.filter((p) => !COMPETITORS.includes(p));
}

/**
 * Every cell path the report reads from the cells' `facts`: the DAG compiler must put these into
 * each report cell (compile.ts `reportCellFacts`), because a path that is neither a fact nor a
 * swept coordinate is unknown to the report stage.
 */
export function reportFactPaths(report: Report | undefined): string[] {
  const cfg = normalizeReport(report);
  const paths = new Set<string>([...cfg.rows, 'distill.method', 'distill.ipc', 'metadd.arm', 'dataset.name', 'seed', cfg.auxiliaries.path]);
  for (const k of Object.keys(cfg.auxiliaries.when)) paths.add(k);
  for (const p of cfg.pool) paths.add(p);
  if (cfg.figures.accuracy_vs) paths.add(cfg.figures.accuracy_vs);
  for (const t of cfg.tables) {
    for (const p of t.rows) paths.add(p);
    for (const k of Object.keys(t.where ?? {})) paths.add(k);
    for (const b of t.baselines) for (const k of Object.keys(b)) paths.add(k);
    for (const p of t.bestWithin ?? []) paths.add(p);
    for (const ref of t.reference) for (const k of Object.keys(ref.after ?? {})) paths.add(k);
    for (const p of t.versusBaseline?.match ?? []) paths.add(p);
    for (const k of Object.keys(t.versusBaseline?.baseline ?? {})) paths.add(k);
  }
  return [...paths];
}

/** A matcher entry accepts one value or any of a list (compared as canonical JSON). */
export function matches(match: Match | undefined, get: (path: string) => unknown): boolean {
  if (!match) return true;
  return Object.entries(match).every(([path, want]) => {
    const have = JSON.stringify(get(path) ?? null);
    return Array.isArray(want) ? want.some((w) => JSON.stringify(w) === have) : JSON.stringify(want) === have;
  });
}

export function pathLabel(cfg: ReportConfig, path: string): string {
  return cfg.labels.paths[path] ?? path;
}

/** Display text of a row value: the configured label, else the value itself ('–' for no value). */
export function valueLabel(cfg: ReportConfig, path: string, value: unknown): string {
  const key = value === null || value === undefined ? 'null' : typeof value === 'string' ? value : JSON.stringify(value);
  const label = cfg.labels.values[path]?.[key];
  if (label !== undefined) return label;
  if (value === null || value === undefined) return '–';
  return key;
}

/** Variant suffixes of an architecture label (src/dag/arch.ts) that read as acronyms in a header. */
const SUFFIX_HEADERS: Record<string, string> = { bn: 'BN', gap: 'GAP' };

/** Column header of an architecture label: the built-in or configured name, keeping variant suffixes (`convnet-w64-bn` -> `ConvNet-w64-BN`). */
export function archHeader(cfg: ReportConfig, arch: string): string {
  const exact = cfg.labels.architectures[arch];
  if (exact !== undefined) return exact;
  const [name, ...suffixes] = arch.split('-');
  const base = cfg.labels.architectures[name];
  if (base === undefined || suffixes.length === 0) return arch;
  return [base, ...suffixes.map((s) => SUFFIX_HEADERS[s] ?? s)].join('-');
}
