import { resolve } from 'node:path';
import type { StageDef } from '../store/store.js';
import type { StageKind } from '../stages/contract.js';
import { STAGE_VERSIONS } from '../stages/versions.js';
import type { Cell, CellSpec, ResolvedSpec } from '../spec/resolve.js';
import { sha256 } from '../store/hash.js';
import { METHODS } from '../distill/registry.js';
import { canonicalJson, getPath, type Json } from '../spec/paths.js';
import { archLabel, normalizeArch, type ArchSpec } from './arch.js';

export interface StageNode extends StageDef {
  /** Indices of the cells that need this stage. */
  cells: number[];
}

export interface CellPlan {
  cell: Cell;
  datasetKey: string;
  /** The image set that is evaluated (the distilled set, or the aligned one). */
  setKey: string;
  evals: { arch: ArchSpec; label: string; key: string }[];
}

export interface Dag {
  nodes: Map<string, StageNode>;
  /** Keys in a topological order (inputs before the stages that read them). */
  order: string[];
  cells: CellPlan[];
  reportKey: string;
}

export interface CompileOptions {
  /** Backend name that goes into the keys of tensor stages. */
  backend: string;
  /** Content digest of a dataset source (part of the dataset stage key). */
  datasetDigest: (dataset: CellSpec['dataset'], dataRoot: string) => string;
}

/** Adds stages to a DAG, deduplicating by key: cells that need the same stage share it. */
export class DagBuilder {
  readonly nodes = new Map<string, StageNode>();
  readonly order: string[] = [];

  constructor(
    private readonly backend: string,
    private readonly spec: { name: string; file: string },
  ) {}

  add(
    kind: StageKind,
    params: Record<string, unknown>,
    inputs: Record<string, string>,
    label: string,
    needsTensors: boolean,
    cell: number,
    locations?: Record<string, string>,
  ): string {
    const backend = needsTensors ? this.backend : null;
    const version = STAGE_VERSIONS[kind];
    const seedInputs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, this.nodes.get(v)?.seedKey ?? v]));
    // Parameters are serialised once for both hashes: the report stage's are as large as the sweep.
    const canonicalParams = canonicalJson(params);
    const seedKey = sha256(`${kind}\u0000${canonicalParams}\u0000${canonicalJson(seedInputs)}`);
    const key = sha256(`${kind}\u0000${version}\u0000${canonicalParams}\u0000${canonicalJson(inputs)}\u0000${backend ?? ''}`);
    const existing = this.nodes.get(key);
    if (existing) {
      if (!existing.cells.includes(cell)) existing.cells.push(cell);
      return key;
    }
    this.nodes.set(key, { key, seedKey, kind, version, params, inputs, label, needsTensors, backend, spec: this.spec, cells: [cell], locations });
    this.order.push(key);
    return key;
  }
}

function datasetLabel(ds: CellSpec['dataset']): string {
  return ds.path ? `${ds.name}:${ds.path}` : ds.name;
}

function setLabel(spec: CellSpec): string {
  return `${spec.distill.method} ipc=${spec.distill.ipc} seed=${spec.seed}`;
}

/**
 * Compiles the cells of a resolved spec into the stage DAG:
 * dataset -> distill -> eval (one per architecture) -> one report over every cell.
 */
export function compileDag(resolved: ResolvedSpec, options: CompileOptions): Dag {
  const specRef = { name: resolved.base.name, file: resolved.loaded.file };
  const b = new DagBuilder(options.backend, specRef);
  const digests = new Map<string, string>();
  const cells: CellPlan[] = [];
  for (const cell of resolved.cells) {
    const spec = cell.spec;
    const dsId = JSON.stringify(spec.dataset);
    let digest = digests.get(dsId);
    if (digest === undefined) {
      digest = options.datasetDigest(spec.dataset, resolved.dataRoot);
      digests.set(dsId, digest);
    }
    const { path, ...datasetParams } = spec.dataset;
    const datasetKey = b.add(
      'dataset',
      { ...datasetParams, digest },
      {},
      `dataset ${datasetLabel(spec.dataset)}`,
      false,
      cell.index,
      path !== undefined ? { path: resolve(resolved.dataRoot, path) } : undefined,
    );
    const method = METHODS[spec.distill.method];
    const setKey = b.add(
      'distill',
      { ...method.keyParams(spec.distill), seed: spec.seed },
      { dataset: datasetKey },
      `distill ${setLabel(spec)}`,
      method.needsTensors,
      cell.index,
    );
    const { architectures, ...protocol } = spec.eval;
    const evals = architectures.map((a) => {
      const arch = normalizeArch(a);
      const label = archLabel(arch);
      const key = b.add(
        'eval',
        { arch, ...protocol, seed: spec.seed },
        { dataset: datasetKey, images: setKey },
        `eval ${label} <- ${setLabel(spec)}`,
        true,
        cell.index,
      );
      return { arch, label, key };
    });
    cells.push({ cell, datasetKey, setKey, evals });
  }
  const rowPaths = resolved.base.report?.rows ?? ['distill.method', 'distill.ipc'];
  const reportInputs: Record<string, string> = {};
  const reportCells = cells.map((c, i) => {
    reportInputs[`set${i}`] = c.setKey;
    const evals = c.evals.map((e, j) => {
      reportInputs[`eval${i}_${j}`] = e.key;
      return { arch: e.label, input: `eval${i}_${j}` };
    });
    return { coords: c.cell.coords, facts: reportCellFacts(c.cell.spec, rowPaths), set: `set${i}`, evals };
  });
  const reportKey = b.add(
    'report',
    { name: resolved.base.name, description: resolved.base.description ?? '', report: resolved.base.report ?? {}, cells: reportCells },
    reportInputs,
    `report ${resolved.base.name}`,
    false,
    -1,
  );
  return { nodes: b.nodes, order: b.order, cells, reportKey };
}

/** The cell values a report groups rows by (method, IPC, ...), read from the cell spec. */
function reportCellFacts(spec: CellSpec, rowPaths: string[]): Record<string, unknown> {
  return Object.fromEntries(rowPaths.map((p) => [p, getPath(spec as unknown as Json, p) ?? null]));
}
