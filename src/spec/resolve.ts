import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SpecError, type SpecIssue } from './errors.js';
import { isInside, loadSpec, locateIn, type LoadedSpec } from './load.js';
import { displayPath, splitPath, type Json, type JsonObject } from './paths.js';
import type { ResolvedExperiment } from './resolved.generated.js';
import { checkSweepPaths, countCells, expandSweep, type CellOrigin } from './sweep.js';
import { validateAgainstSchema, type Locator } from './validate.js';
import { resolveArch } from '../nn/arch-defaults.js';
import { METHODS } from '../distill/registry.js';

export type CellSpec = Omit<ResolvedExperiment, 'sweep'>;

export interface Cell {
  index: number;
  /** The swept values of this cell (dotted path -> value); {} without a sweep. */
  coords: Record<string, Json>;
  spec: CellSpec;
}

export interface ResolvedSpec {
  loaded: LoadedSpec;
  /** The spec with defaults, before expansion (sweep included). */
  base: ResolvedExperiment;
  cells: Cell[];
  storeDir: string;
  dataRoot: string;
}

/** What semantic validation needs to know about a dataset without loading it. */
export interface DatasetFacts {
  classes: number;
  /** Training images of the smallest class (after train_limit). */
  minPerClass: number;
}

export interface ResolveOptions {
  sets?: string[];
  /** Facts about the dataset, for checks such as IPC <= images per class. Throws when the source is unusable. */
  describeDataset?: (dataset: CellSpec['dataset'], dataRoot: string) => DatasetFacts;
  /** Extra semantic checks contributed by stage modules; return problems as (path, message). */
  checks?: ((cell: CellSpec) => { path: string; message: string }[])[];
}

const USER_DATASETS = new Set(['idx', 'cifar10', 'cifar100', 'image-folder', 'npy']);

export function resolveSpec(file: string, options: ResolveOptions = {}): ResolvedSpec {
  const loaded = loadSpec(file, options.sets ?? []);
  const locateBase: Locator = (parts, at) => locateIn(loaded, parts, at);
  const base = structuredClone(loaded.raw);
  const issues = validateAgainstSchema(base, locateBase);
  const sweep = (base.sweep ?? undefined) as Parameters<typeof expandSweep>[1];
  if (sweep) issues.push(...checkSweepPaths(sweep, locateBase));
  if (issues.length > 0) throw new SpecError(issues);

  const resolvedBase = base as unknown as ResolvedExperiment;
  const maxCells = resolvedBase.sweep?.max_cells ?? 10000;
  const count = countCells(sweep);
  if (count > maxCells) {
    throw new SpecError([
      {
        ...locateBase(['sweep', 'axes'], 'key'),
        path: 'sweep',
        message: `the sweep expands to ${count} cells, more than sweep.max_cells = ${maxCells}; narrow the axes or raise max_cells`,
      },
    ]);
  }

  const projectRoot = loaded.projectRoot;
  const dataRoot = isAbsolute(resolvedBase.data_root) ? resolvedBase.data_root : resolve(projectRoot, resolvedBase.data_root);
  const storeDir = isAbsolute(resolvedBase.store) ? resolvedBase.store : resolve(projectRoot, resolvedBase.store);
  if (!isAbsolute(resolvedBase.store) && !isInside(projectRoot, storeDir)) {
    issues.push({ ...locateBase(['store'], 'value'), path: 'store', message: `store '${resolvedBase.store}' escapes the project root; use an absolute path for a store elsewhere` });
  }

  const rawBase: JsonObject = structuredClone(loaded.raw);
  delete rawBase.sweep;
  const rawCells = expandSweep(rawBase, sweep);
  const cells: Cell[] = [];
  const seen = new Set<string>();
  const factsCache = new Map<string, DatasetFacts | Error>();
  for (const rc of rawCells) {
    const locateCell: Locator = (parts, at) => {
      const dotted = parts.join('.');
      for (const [path, origin] of Object.entries(rc.origins)) {
        if (dotted === path || dotted.startsWith(`${path}.`)) return locateIn(loaded, originParts(origin, path), at === 'key' ? 'value' : at);
      }
      return locateIn(loaded, parts, at);
    };
    const cellIssues = validateAgainstSchema(rc.raw, locateCell);
    if (cellIssues.length === 0) {
      const spec = rc.raw as unknown as CellSpec;
      cellIssues.push(...semanticIssues(spec, dataRoot, locateCell, options, factsCache));
      if (cellIssues.length === 0) cells.push({ index: cells.length, coords: rc.coords, spec });
    }
    const where = Object.keys(rc.coords).length ? ` (sweep cell ${Object.entries(rc.coords).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')})` : '';
    for (const issue of cellIssues) {
      const id = `${issue.file}:${issue.line}:${issue.col}:${issue.path}:${issue.message}`;
      if (seen.has(id)) continue;
      seen.add(id);
      issues.push({ ...issue, message: issue.message + (issue.line > 0 && rc.origins[issue.path] ? where : '') });
    }
  }
  if (issues.length > 0) throw new SpecError(issues);
  return { loaded, base: resolvedBase, cells, storeDir, dataRoot };
}

function originParts(origin: CellOrigin, path: string): string[] {
  return 'axis' in origin ? ['sweep', 'axes', path, String(origin.index)] : ['sweep', 'include', String(origin.include), path];
}

function semanticIssues(
  spec: CellSpec,
  dataRoot: string,
  locateAt: Locator,
  options: ResolveOptions,
  factsCache: Map<string, DatasetFacts | Error>,
): SpecIssue[] {
  const out: SpecIssue[] = [];
  const at = (path: string, message: string): SpecIssue => ({ ...locateAt(splitPath(path), 'value'), path, message });
  const ds = spec.dataset;
  if (USER_DATASETS.has(ds.name)) {
    if (ds.path === undefined) {
      out.push(at('dataset.name', `dataset '${ds.name}' reads files: set dataset.path to the folder holding them`));
      return out;
    }
    const full = resolve(dataRoot, ds.path);
    if (!isInside(dataRoot, full)) {
      out.push(at('dataset.path', `'${ds.path}' resolves outside data_root (${dataRoot}); move the data or set data_root`));
      return out;
    }
    if (!existsSync(full)) {
      out.push({
        ...at('dataset.path', `'${ds.path}' does not exist (looked for ${full})`),
        hint: `put the data there, or point at the folder holding '${ds.path}' with --set data_root=<folder> (docs/datasets.md)`,
      });
      return out;
    }
  }
  if (options.describeDataset) {
    const id = JSON.stringify(ds);
    let facts = factsCache.get(id);
    if (facts === undefined) {
      try {
        facts = options.describeDataset(ds, dataRoot);
      } catch (err) {
        facts = err instanceof Error ? err : new Error(String(err));
      }
      factsCache.set(id, facts);
    }
    if (facts instanceof Error) {
      out.push(at(ds.path !== undefined ? 'dataset.path' : 'dataset.name', facts.message));
    } else if (!METHODS[spec.distill.method].realData && spec.distill.ipc > facts.minPerClass) {
      out.push(at('distill.ipc', `IPC ${spec.distill.ipc} is more than the ${facts.minPerClass} training images of the smallest class`));
    }
  }
  if (METHODS[spec.distill.method].realData && spec.metadd.arm !== 'none') {
    out.push(
      at(
        'metadd.arm',
        `'${spec.metadd.arm}' aligns a distilled set, and distill.method '${spec.distill.method}' is the real training set; ` +
          `give its cells metadd.arm: none (e.g. a sweep include {distill.method: ${spec.distill.method}, metadd.arm: none})`,
      ),
    );
  }
  if (spec.metadd.relative_weights && spec.metadd.arm === 'metadd' && spec.distill.method === 'random') {
    out.push(
      at(
        'metadd.relative_weights',
        "relative weights are fractions of the base method's pixel gradient, and distill.method 'random' has no loss; use the absolute metadd.lambda_ai / lambda_var for it",
      ),
    );
  }
  for (const [path, arch] of architecturesOf(spec)) {
    try {
      resolveArch(arch as Parameters<typeof resolveArch>[0]);
    } catch (err) {
      out.push(at(path, (err as Error).message));
    }
  }
  out.push(...microBatchIssues(spec).map(([path, message]) => at(path, message)));
  if (spec.dataset.zca) {
    // Both clamp pixels to the range normalised real pixels take, which whitened pixels do not keep.
    if (spec.distill.method === 'sre2l') out.push(at('dataset.zca', "SRe2L clamps its images to the range of unwhitened real pixels; use it without dataset.zca (its reference does)"));
    if (spec.distill.method === 'mtt' && spec.distill.mtt.clip_pixels) out.push(at('distill.mtt.clip_pixels', 'clamps to the range of unwhitened real pixels, which dataset.zca does not keep; turn one of them off'));
  }
  for (const check of options.checks ?? []) for (const p of check(spec)) out.push(at(p.path, p.message));
  return out;
}

/** A micro-batch must split the batch, and cannot with batch norm (each chunk would be normalised by its own statistics). */
function microBatchIssues(spec: CellSpec): [string, string][] {
  const out: [string, string][] = [];
  const check = (path: string, microBatch: number | null | undefined, batch: number, archs: unknown[]): void => {
    if (microBatch == null) return;
    if (microBatch >= batch) {
      out.push([path, `${microBatch} does not split the batch of ${batch}: it changes nothing; remove it, or set a smaller value`]);
      return;
    }
    for (const arch of archs) {
      let norm: string;
      try {
        norm = resolveArch(arch as Parameters<typeof resolveArch>[0]).norm;
      } catch {
        continue; // reported by the architecture check
      }
      if (norm === 'batch') {
        const name = typeof arch === 'string' ? arch : (arch as { name: string }).name;
        out.push([path, `${name} has batch norm, which would normalise each micro-batch by its own statistics (a different training); remove micro_batch or that architecture`]);
        return;
      }
    }
  };
  check('eval.micro_batch', spec.eval.micro_batch, spec.eval.batch, spec.eval.architectures);
  if (spec.metadd.arm !== 'none') check('metadd.pretrain.micro_batch', spec.metadd.pretrain.micro_batch, spec.metadd.pretrain.batch, spec.metadd.aux);
  return out;
}

/** Every architecture a cell names, with its spec path (the schema checks names; the zoo's rules, which options an architecture lets a spec change, are checked here so that a run never starts with a network it cannot build). */
function architecturesOf(spec: CellSpec): [string, unknown][] {
  const out: [string, unknown][] = [];
  spec.eval.architectures.forEach((a, i) => out.push([`eval.architectures.${i}`, a]));
  spec.metadd.aux.forEach((a, i) => out.push([`metadd.aux.${i}`, a]));
  for (const m of ['dm', 'dc', 'dsa', 'mtt'] as const) out.push([`distill.${m}.arch`, spec.distill[m].arch]);
  out.push(['distill.sre2l.teacher.arch', spec.distill.sre2l.teacher.arch]);
  return out;
}

export { displayPath };
