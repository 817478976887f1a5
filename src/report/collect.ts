import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { ArtifactView } from '../stages/contract.js';
import { readRecords } from '../tracking/records-io.js';
import type { Report } from '../spec/types.generated.js';
import { readSetFacts, type SetFacts } from './sets.js';

/** One cell of the sweep as the DAG compiler hands it to the report stage (src/dag/compile.ts). */
export interface ReportCellParam {
  /** The swept values of the cell (dotted path -> value). */
  coords: Record<string, unknown>;
  /** Cell values the report groups and filters by (dotted path -> value; see reportFactPaths). */
  facts: Record<string, unknown>;
  /** Input name of the evaluated image set. */
  set: string;
  /** One evaluation per architecture: its column label and input name. */
  evals: { arch: string; input: string }[];
}

/** Parameters of the report stage (they are its cache key). */
export interface ReportParams {
  name: string;
  description: string;
  report: Report;
  cells: ReportCellParam[];
}

/** Where the report reads artifacts from: the stage's inputs, or the store when rebuilding. */
export interface ArtifactSource {
  /** The finished artifact behind an input name; undefined when it is not (yet) in the store. */
  artifact(input: string): ArtifactView | undefined;
  /** Why an input is missing (e.g. "not computed", "failed: see <log>"). */
  missingReason?(input: string): string | undefined;
  /** The stage label behind an input name, for the list of missing results. */
  label?(input: string): string | undefined;
  /** Directory of another artifact by key (upstream image sets of a set, for their loss curves). */
  artifactDir?(key: string): string | undefined;
}

export interface CurvePoint {
  step: number;
  value: number;
}

export interface EvalData {
  arch: string;
  input: string;
  key?: string;
  /** Per-model test accuracies in [0, 1]; undefined when the result is missing or unreadable. */
  accuracies?: number[];
  /** Per-model curves from result.json (epochs are 1-based). */
  trainLoss?: number[][];
  testAccuracy?: { epochs: number[]; values: number[] }[];
  problem?: string;
}

export interface SetData {
  input: string;
  key?: string;
  dir?: string;
  kind?: string;
  grid?: string;
  /** Absolute paths of CAM overlay pictures in the set artifact. */
  cams: string[];
  /** Metric records of the set and of the image sets it was refined from, by metric key. */
  curves: Record<string, CurvePoint[]>;
  /** Parameters of the stage that made the set (its stage.json), e.g. a metadd stage's `aux`. */
  stageParams?: Record<string, unknown>;
  /** Cost and pixel statistics from its meta.json (report/sets.ts). */
  facts?: SetFacts;
  problem?: string;
}

export interface CellData {
  index: number;
  coords: Record<string, unknown>;
  facts: Record<string, unknown>;
  set: SetData;
  evals: EvalData[];
}

export interface MissingItem {
  input: string;
  what: 'evaluation' | 'image set';
  /** Which cell and column: "distill.method=dc, distill.ipc=10: convnet". */
  where: string;
  label?: string;
  reason: string;
}

export interface CollectedData {
  cells: CellData[];
  missing: MissingItem[];
  expectedEvals: number;
  presentEvals: number;
}

/** A cell value: the compiler's facts first, then the swept coordinates; undefined when unknown. */
export function cellValue(cell: { facts: Record<string, unknown>; coords: Record<string, unknown> }, path: string): unknown {
  if (Object.hasOwn(cell.facts, path)) return cell.facts[path];
  if (Object.hasOwn(cell.coords, path)) return cell.coords[path];
  return undefined;
}

/**
 * One entry per evaluation artifact: cells that differ only in a setting none of their stages reads
 * (an axis of another method) share their evaluations, whose models a pooled row counts once.
 */
export function uniqueEvals(evals: readonly EvalData[]): EvalData[] {
  const seen = new Set<string>();
  return evals.filter((e) => !seen.has(e.input) && seen.add(e.input));
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8')) as unknown;
}

function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function readEval(view: ArtifactView): Omit<EvalData, 'arch' | 'input'> {
  const file = join(view.dir, 'result.json');
  if (!existsSync(file)) return { key: view.key, problem: 'result.json is missing from the artifact' };
  let r: Record<string, unknown>;
  try {
    r = readJson(file) as Record<string, unknown>;
  } catch (err) {
    return { key: view.key, problem: `result.json is not JSON: ${(err as Error).message}` };
  }
  const acc = r.accuracies;
  if (!isNumberArray(acc) || acc.length === 0 || acc.some((a) => a < 0 || a > 1)) {
    return { key: view.key, problem: 'result.json has no accuracies in [0, 1]' };
  }
  const curves = (r.curves ?? {}) as Record<string, unknown>;
  const trainLoss = Array.isArray(curves.train_loss) ? (curves.train_loss as unknown[]).filter(isNumberArray) : undefined;
  let testAccuracy: EvalData['testAccuracy'];
  if (Array.isArray(curves.test_accuracy)) {
    const values = (curves.test_accuracy as unknown[]).filter(isNumberArray);
    const epochs = Array.isArray(curves.test_epochs) ? (curves.test_epochs as unknown[]).filter(isNumberArray) : [];
    testAccuracy = values.map((v, i) => ({ values: v, epochs: epochs[i]?.length === v.length ? epochs[i] : v.map((_, j) => j + 1) }));
  }
  return { key: view.key, accuracies: acc, trainLoss, testAccuracy };
}

/** CAM overlays: any cam*.png in the artifact, plus PNGs the stage declared with a name starting with "cam". */
function findCams(dir: string, declared: string[]): string[] {
  const found = new Set<string>();
  const walk = (d: string, depth: number): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(d, e.name);
      if (e.isDirectory() && depth < 3) walk(full, depth + 1);
      else if (e.isFile() && /^cam.*\.png$/i.test(e.name)) found.add(full);
    }
  };
  walk(dir, 0);
  for (const p of declared) {
    const full = join(dir, p);
    if (/^cam.*\.png$/i.test(basename(p)) && existsSync(full) && !relative(dir, full).startsWith('..')) found.add(full);
  }
  return [...found].sort();
}

const IMAGE_SET_KINDS = new Set(['distill', 'metadd']);

/**
 * Metric records of an image set and of the image sets upstream of it (a MetaDD set continues its
 * base run, so the base curve is the first part of its trajectory). Upstream artifacts are found
 * through the inputs in each artifact's stage.json.
 */
async function setCurves(view: ArtifactView, source: ArtifactSource): Promise<{ curves: Record<string, CurvePoint[]>; declared: string[] }> {
  const curves: Record<string, CurvePoint[]> = {};
  const declared: string[] = [];
  const visited = new Set<string>();
  const visit = async (dir: string, key: string, own: boolean): Promise<void> => {
    if (visited.has(key)) return;
    visited.add(key);
    for (const r of await readRecords(join(dir, 'records.jsonl'))) {
      if (r.type === 'metric' && Number.isFinite(r.value)) (curves[r.key] ??= []).push({ step: r.step, value: r.value });
      else if (r.type === 'artifact' && own) declared.push(r.path);
    }
    const defFile = join(dir, 'stage.json');
    if (!source.artifactDir || !existsSync(defFile)) return;
    const def = readJson(defFile) as { inputs?: Record<string, string> };
    for (const upKey of Object.values(def.inputs ?? {})) {
      const upDir = source.artifactDir(upKey);
      if (!upDir || !existsSync(join(upDir, 'manifest.json'))) continue;
      const kind = (readJson(join(upDir, 'manifest.json')) as { kind?: string }).kind;
      if (kind && IMAGE_SET_KINDS.has(kind)) await visit(upDir, upKey, false);
    }
  };
  await visit(view.dir, view.key, true);
  for (const points of Object.values(curves)) {
    // The same step logged twice (a resumed run replays its checkpointed curve): keep the last.
    const byStep = new Map<number, number>();
    for (const p of points) byStep.set(p.step, p.value);
    points.splice(0, points.length, ...[...byStep].sort((a, b) => a[0] - b[0]).map(([step, value]) => ({ step, value })));
  }
  return { curves, declared };
}

function describeCell(cell: ReportCellParam): string {
  const entries = Object.entries(cell.coords).length > 0 ? Object.entries(cell.coords) : Object.entries(cell.facts);
  return entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ') || 'the only cell';
}

/** Reads every result the report needs from `source`; what is absent becomes a MissingItem, never a zero. */
export async function collect(params: ReportParams, source: ArtifactSource): Promise<CollectedData> {
  const cells: CellData[] = [];
  const missing: MissingItem[] = [];
  let expectedEvals = 0;
  let presentEvals = 0;
  // Cells that share a stage share its input name (the compiler gives each artifact one): read and count it once.
  const setCache = new Map<string, SetData>();
  const evalCache = new Map<string, EvalData>();
  for (const [index, cell] of params.cells.entries()) {
    const where = describeCell(cell);
    let set = setCache.get(cell.set);
    if (!set) {
      const view = source.artifact(cell.set);
      set = { input: cell.set, cams: [], curves: {} };
      if (view) {
        const grid = join(view.dir, 'grid.png');
        const { curves, declared } = await setCurves(view, source);
        const defFile = join(view.dir, 'stage.json');
        const def = existsSync(defFile) ? (readJson(defFile) as { params?: Record<string, unknown>; inputs?: Record<string, string> }) : undefined;
        const datasetKey = def?.inputs?.dataset;
        const facts = readSetFacts(view.meta, view.dir, datasetKey ? source.artifactDir?.(datasetKey) : undefined);
        set = { ...set, key: view.key, dir: view.dir, kind: view.kind, grid: existsSync(grid) ? grid : undefined, cams: findCams(view.dir, declared), curves, stageParams: def?.params, facts };
      } else {
        set.problem = source.missingReason?.(cell.set) ?? 'not in the store';
        missing.push({ input: cell.set, what: 'image set', where, label: source.label?.(cell.set), reason: set.problem });
      }
      setCache.set(cell.set, set);
    }
    const evals: EvalData[] = cell.evals.map((e) => {
      const known = evalCache.get(e.input);
      if (known) return known;
      expectedEvals++;
      const view = source.artifact(e.input);
      const data: EvalData = view ? { arch: e.arch, input: e.input, ...readEval(view) } : { arch: e.arch, input: e.input, problem: source.missingReason?.(e.input) ?? 'not in the store' };
      if (data.accuracies) presentEvals++;
      else missing.push({ input: e.input, what: 'evaluation', where: `${where}: ${e.arch}`, label: source.label?.(e.input), reason: data.problem ?? 'no result' });
      evalCache.set(e.input, data);
      return data;
    });
    cells.push({ index, coords: cell.coords, facts: cell.facts, set, evals });
  }
  return { cells, missing, expectedEvals, presentEvals };
}
