import { resolve } from 'node:path';
import type { StageDef } from '../store/store.js';
import type { StageKind } from '../stages/contract.js';
import { STAGE_VERSIONS } from '../stages/versions.js';
import type { Cell, CellSpec, ResolvedSpec } from '../spec/resolve.js';
import { sha256 } from '../store/hash.js';
import { METHODS, RANDOM_BASE_OPTIMIZER } from '../distill/registry.js';
import { canonicalJson, displayPath, getPath, type Json } from '../spec/paths.js';
import { ReportConfigError, reportFactPaths } from '../report/config.js';
import { SpecError } from '../spec/errors.js';
import { locateIn } from '../spec/load.js';
import { archLabel, normalizeArch, type ArchSpec } from './arch.js';
import { disambiguateLabels } from './labels.js';
import { armIgnores } from '../spec/arm-settings.js';
import { zooArch } from '../distill/arch.js';
import { METADD_CHUNK } from '../distill/metadd/chunk.js';
import type { MetaddParams } from '../stages/metadd.js';
import type { PretrainParams } from '../stages/pretrain.js';

export interface StageNode extends StageDef {
  /** Indices of the cells that need this stage. */
  cells: number[];
}

export interface CellPlan {
  cell: Cell;
  datasetKey: string;
  /** The base method's set (the distill stage). */
  distillKey: string;
  /** The auxiliary networks of a MetaDD arm (shared pretrain stages), in spec order. */
  auxKeys: string[];
  /** The metadd stage of a cell whose arm is not 'none'. */
  metaddKey?: string;
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

/**
 * What a stage label says about the image set: the dataset only when the spec has several, the method,
 * the MetaDD arm of an aligned set, the IPC unless the method ignores it, and the seed of a set that
 * depends on one (`distill` of 'whole' does not; its evaluations do). Labels are not part of keys.
 */
function setLabel(spec: CellSpec, withDataset: boolean, stage: 'distill' | 'downstream'): string {
  const realData = METHODS[spec.distill.method].realData === true;
  const dataset = withDataset ? `${datasetLabel(spec.dataset)} ` : '';
  const arm = stage === 'distill' || spec.metadd.arm === 'none' ? '' : ` +${spec.metadd.arm}`;
  const ipc = realData ? '' : ` ipc=${spec.distill.ipc}`;
  const seed = stage === 'distill' && realData ? '' : ` seed=${spec.seed}`;
  return `${dataset}${spec.distill.method}${arm}${ipc}${seed}`;
}

/** Rows of the report when the spec does not choose them. */
const DEFAULT_ROWS = ['distill.method', 'distill.ipc'];

/**
 * The pixel optimiser of a metadd stage: the spec's, else the base method's (its resolved key
 * parameters), else, for a base without one ('random'), RANDOM_BASE_OPTIMIZER.
 */
function metaddOptimizer(spec: CellSpec, baseKey: Record<string, unknown>): { lr: number; momentum: number } {
  const lr = spec.metadd.image_lr ?? (typeof baseKey.lr_img === 'number' ? baseKey.lr_img : RANDOM_BASE_OPTIMIZER.lr);
  const momentum = spec.metadd.momentum ?? (typeof baseKey.momentum === 'number' ? baseKey.momentum : RANDOM_BASE_OPTIMIZER.momentum);
  return { lr, momentum };
}

/** An auxiliary architecture as its pretrain stage builds it: always with the gap head (exact CAMs). */
export function auxArch(a: CellSpec['metadd']['aux'][number]): ArchSpec {
  return { ...normalizeArch(a as Parameters<typeof normalizeArch>[0]), head: 'gap' };
}

/** A network trained on the real set by a spec protocol block (metadd.pretrain, distill.sre2l.teacher). */
type PretrainProtocol = Pick<PretrainParams, 'epochs' | 'lr' | 'momentum' | 'weight_decay' | 'batch' | 'augment' | 'decay_epoch' | 'train_limit' | 'seed'> & {
  micro_batch?: number | null;
};

/** `micro_batch` as a stage parameter: present only when the spec sets it, so every other stage keeps its key. */
function microBatchParam(microBatch: number | null | undefined): { micro_batch?: number } {
  return microBatch == null ? {} : { micro_batch: microBatch };
}

/** The pretrain stage parameters of `arch` trained by protocol `p` (shared by every cell with the same protocol). */
function protocolPretrainParams(arch: Parameters<typeof zooArch>[0], p: PretrainProtocol): PretrainParams {
  return {
    arch: zooArch(arch),
    epochs: p.epochs,
    lr: p.lr,
    momentum: p.momentum,
    weight_decay: p.weight_decay,
    batch: p.batch,
    augment: p.augment,
    decay_epoch: p.decay_epoch,
    train_limit: p.train_limit,
    snapshots: false,
    test_every: 0,
    seed: p.seed,
    ...microBatchParam(p.micro_batch),
  };
}

/** The pretrain stage parameters of MTT's expert `i` (shared by every cell with the same expert protocol). */
function mttExpertParams(spec: CellSpec, i: number): PretrainParams {
  const p = spec.distill.mtt;
  const protocol: PretrainProtocol = {
    epochs: p.expert_epochs,
    lr: p.expert_lr,
    // The reference's experts (buffer.py): plain SGD at a constant lr, no momentum, no weight decay.
    momentum: 0,
    weight_decay: 0,
    batch: p.expert_batch,
    augment: p.expert_augment,
    decay_epoch: null,
    train_limit: p.expert_train_limit,
    seed: i,
  };
  return { ...protocolPretrainParams(p.arch, protocol), snapshots: true };
}

/** The pretrain stage parameters of one auxiliary network. */
function auxPretrainParams(spec: CellSpec, arch: ArchSpec): PretrainParams {
  return protocolPretrainParams(arch, spec.metadd.pretrain);
}

/** The pretrain stage parameters of SRe2L's squeezed teacher. */
function sre2lTeacherParams(spec: CellSpec): PretrainParams {
  return protocolPretrainParams(spec.distill.sre2l.teacher.arch, spec.distill.sre2l.teacher);
}

/** How a method's stages connect beyond dataset -> distill -> eval (one entry per method that needs more). */
interface MethodWiring {
  /** Extra inputs (input name -> stage key) of the distill stage; the metadd stage continuing it gets them too (createMethod reads them in both). */
  inputs(spec: CellSpec, b: DagBuilder, datasetKey: string, cell: number): Record<string, string>;
  /** What the method adds to the params and inputs of its sets' evaluations, given its extra inputs. */
  evaluation(spec: CellSpec, inputs: Record<string, string>): { params: Record<string, unknown>; inputs: Record<string, string> };
}

const METHOD_WIRING: Partial<Record<CellSpec['distill']['method'], MethodWiring>> = {
  sre2l: {
    inputs: (spec, b, datasetKey, cell) => ({
      teacher: b.add('pretrain', { ...sre2lTeacherParams(spec) }, { dataset: datasetKey }, `pretrain sre2l teacher ${archLabel(normalizeArch(spec.distill.sre2l.teacher.arch))}`, true, cell),
    }),
    // Relabel: the students learn from the teacher's soft outputs on every augmented batch (eval.ts
    // `kd`), so the evaluations read the teacher, metadd-aligned sets included, and get keys of their own.
    evaluation: (spec, inputs) => ({ params: { kd: { temperature: spec.distill.sre2l.temperature } }, inputs: { teacher: inputs.teacher } }),
  },
  mtt: {
    inputs: (spec, b, datasetKey, cell) =>
      Object.fromEntries(
        Array.from({ length: spec.distill.mtt.experts }, (_, i) => [
          `expert${i}`,
          b.add('pretrain', { ...mttExpertParams(spec, i) }, { dataset: datasetKey }, `pretrain mtt expert ${i}`, true, cell),
        ]),
      ),
    // MTT learns the students' learning rate with its images: the reference evaluates with it.
    evaluation: (spec) => ({ params: spec.distill.mtt.eval_learned_lr ? { lr_from_set: true } : {}, inputs: {} }),
  },
};

/**
 * Compiles the cells of a resolved spec into the stage DAG:
 * dataset -> distill -> [MetaDD arms: pretrain (one per auxiliary network, shared) -> metadd]
 * -> eval of the final set (one per architecture) -> one report over every cell.
 */
export function compileDag(resolved: ResolvedSpec, options: CompileOptions): Dag {
  const specRef = { name: resolved.base.name, file: resolved.loaded.file };
  const b = new DagBuilder(options.backend, specRef);
  const digests = new Map<string, string>();
  const cells: CellPlan[] = [];
  const withDataset = new Set(resolved.cells.map((c) => datasetLabel(c.spec.dataset))).size > 1;
  for (const cell of resolved.cells) {
    const spec = cell.spec;
    const dsId = JSON.stringify(spec.dataset);
    let digest = digests.get(dsId);
    if (digest === undefined) {
      digest = options.datasetDigest(spec.dataset, resolved.dataRoot);
      digests.set(dsId, digest);
    }
    const { path, zca, ...datasetParams } = spec.dataset;
    // Whitening multiplies by a covariance's inverse root: float32 products on the tensor backend, so such
    // a dataset is keyed by backend like every tensor stage. Absent otherwise, so other datasets keep their keys.
    const datasetKey = b.add(
      'dataset',
      { ...datasetParams, ...(zca ? { zca } : {}), digest },
      {},
      `dataset ${datasetLabel(spec.dataset)}`,
      zca != null,
      cell.index,
      path !== undefined ? { path: resolve(resolved.dataRoot, path) } : undefined,
    );
    const method = METHODS[spec.distill.method];
    const baseKey = method.keyParams(spec.distill);
    const wiring = METHOD_WIRING[spec.distill.method];
    const extraInputs = wiring?.inputs(spec, b, datasetKey, cell.index) ?? {};
    const distillParams = method.realData ? baseKey : { ...baseKey, seed: spec.seed };
    const distillKey = b.add('distill', distillParams, { dataset: datasetKey, ...extraInputs }, `distill ${setLabel(spec, withDataset, 'distill')}`, method.needsTensors, cell.index);
    let setKey = distillKey;
    const auxKeys: string[] = [];
    let metaddKey: string | undefined;
    const md = spec.metadd;
    // Joint mode with zero weights is the base run itself (same initialisation, stream and budget):
    // the control arm reuses the base set instead of recomputing identical bytes.
    const jointControl = md.mode === 'joint' && md.arm === 'control';
    if (md.arm !== 'none' && !jointControl) {
      if (md.mode === 'joint' && !method.needsTensors) {
        throw new Error(
          `metadd.mode: 'joint' runs the MetaDD terms inside the base method's own iterations, and distill.method '${spec.distill.method}' has none; use metadd.mode: refine`,
        );
      }
      const auxArchs = md.aux.map(auxArch);
      for (const arch of auxArchs) {
        auxKeys.push(b.add('pretrain', { ...auxPretrainParams(spec, arch) }, { dataset: datasetKey }, `pretrain aux ${archLabel(arch)}`, true, cell.index));
      }
      const control = md.arm === 'control';
      const optimizer = metaddOptimizer(spec, baseKey);
      const params: MetaddParams = {
        base: baseKey as MetaddParams['base'],
        seed: spec.seed,
        arm: md.arm,
        mode: md.mode,
        // Joint: the base method's own budget, all of it with the MetaDD terms (metadd.iterations is unused).
        iterations: md.mode === 'joint' ? (baseKey.iterations as number) : md.iterations,
        aux: auxArchs.map(zooArch),
        // The control arm ignores the weights: zero them so control cells of every lambda share one stage.
        lambda_ai: control || md.relative_weights ? 0 : md.lambda_ai,
        lambda_var: control || md.relative_weights ? 0 : md.lambda_var,
        // Our extension: only a nonzero weight enters the key, so the paper's loss keeps its keys.
        ...(!control && md.lambda_pos > 0 && !md.relative_weights ? { lambda_pos: md.lambda_pos } : {}),
        // Relative weights replace the lambdas (the stage derives them); absent otherwise, keys unchanged.
        ...(!control && md.relative_weights ? { relative_weights: { ...md.relative_weights } } : {}),
        tau: md.tau,
        // Only a chunk size other than the default enters the key: the default's keys stay as they were.
        ...(md.chunk !== null && md.chunk !== METADD_CHUNK ? { chunk: md.chunk } : {}),
        image_lr: optimizer.lr,
        momentum: optimizer.momentum,
        diagnostics: { ...md.diagnostics },
      };
      // Joint mode starts from the method's own initialisation: no base set to read.
      const inputs: Record<string, string> = md.mode === 'joint' ? { dataset: datasetKey } : { dataset: datasetKey, images: distillKey };
      auxKeys.forEach((k, i) => (inputs[`aux${i}`] = k));
      Object.assign(inputs, extraInputs);
      metaddKey = b.add('metadd', { ...params }, inputs, `metadd ${setLabel(spec, withDataset, 'downstream')}`, true, cell.index);
      setKey = metaddKey;
    }
    const { architectures, micro_batch: microBatch, ...protocol } = spec.eval;
    const evaluation = wiring?.evaluation(spec, extraInputs) ?? { params: {}, inputs: {} };
    const evals = architectures.map((a) => {
      const arch = normalizeArch(a);
      const label = archLabel(arch);
      // The zoo's own spelling: the planner's defaults differ from the zoo's for some architectures.
      const key = b.add(
        'eval',
        { arch: zooArch(arch), ...protocol, ...microBatchParam(microBatch), ...evaluation.params, seed: spec.seed },
        { dataset: datasetKey, images: setKey, ...evaluation.inputs },
        `eval ${label} <- ${setLabel(spec, withDataset, 'downstream')}`,
        true,
        cell.index,
      );
      return { arch, label, key };
    });
    cells.push({ cell, datasetKey, distillKey, auxKeys, metaddKey, setKey, evals });
  }
  // Without rows chosen in the spec, MetaDD arms get rows of their own (base / control / metadd).
  const written = (resolved.loaded.raw.report as { rows?: unknown } | undefined)?.rows !== undefined;
  const anyArm = cells.some((c) => c.cell.spec.metadd.arm !== 'none');
  const rowPaths = written ? (resolved.base.report?.rows ?? DEFAULT_ROWS) : anyArm ? [...(resolved.base.report?.rows ?? DEFAULT_ROWS), 'metadd.arm'] : (resolved.base.report?.rows ?? DEFAULT_ROWS);
  const reportInputs: Record<string, string> = {};
  // One input name per artifact: cells that differ only in a setting none of their stages reads
  // share their stages, and a report row pooling them must count those evaluation models once.
  const inputNames = new Map<string, string>();
  const inputFor = (key: string, name: string): string => {
    const known = inputNames.get(key);
    if (known !== undefined) return known;
    inputNames.set(key, name);
    reportInputs[name] = key;
    return name;
  };
  const reportPaths = [...rowPaths, 'metadd.arm', ...reportPathsOf(resolved)];
  // A path that only some cells set (an `include` row's `distill.mtt.expert_epochs`) can become a
  // row column of the report; the other cells must show the value they ran with, not a blank.
  const partialPaths = [...new Set(cells.flatMap((c) => Object.keys(c.cell.coords)))].filter((p) => cells.some((c) => !Object.hasOwn(c.cell.coords, p)));
  const reportCells = cells.map((c, i) => {
    const set = inputFor(c.setKey, `set${i}`);
    const evals = c.evals.map((e, j) => ({ arch: e.label, input: inputFor(e.key, `eval${i}_${j}`) }));
    const factPaths = [...reportPaths, ...partialPaths, ...Object.keys(c.cell.coords).filter(methodBlockOf)];
    return { coords: c.cell.coords, facts: reportCellFacts(c.cell.spec, [...new Set(factPaths)]), set, evals };
  });
  const reportKey = b.add(
    'report',
    {
      name: resolved.base.name,
      description: resolved.base.description ?? '',
      report: anyArm && !written ? { ...(resolved.base.report ?? {}), rows: rowPaths } : (resolved.base.report ?? {}),
      cells: reportCells,
    },
    reportInputs,
    `report ${resolved.base.name}`,
    false,
    -1,
  );
  disambiguateLabels(b.nodes.values(), resolved.cells);
  return { nodes: b.nodes, order: b.order, cells, reportKey };
}

/**
 * The cell values a report groups rows by (method, IPC, ...), read from the cell spec. A setting the
 * cell never used is null, where a report row would otherwise print the grid value the cell happened
 * to be drawn with: one of another method's block (`distill.sre2l.init` in a random-subset cell), a
 * MetaDD setting of the base set, a MetaDD weight of the control arm (src/spec/arm-settings.ts).
 */
function reportCellFacts(spec: CellSpec, rowPaths: string[]): Record<string, unknown> {
  return Object.fromEntries(
    rowPaths.map((p) => {
      const block = methodBlockOf(p);
      const unused = (block !== undefined && block !== spec.distill.method) || armIgnores(spec.metadd.arm, p);
      return [p, unused ? null : (getPath(spec as unknown as Json, p) ?? null)];
    }),
  );
}

/** The method whose own block holds `path` (`distill.<method>.<setting>`), else undefined. */
function methodBlockOf(path: string): string | undefined {
  const [head, block, setting] = path.split('.');
  return head === 'distill' && setting !== undefined && Object.hasOwn(METHODS, block) ? block : undefined;
}

/** The paths the report reads; a report section that cannot be laid out is a spec error at its line. */
function reportPathsOf(resolved: ResolvedSpec): string[] {
  try {
    return reportFactPaths(resolved.base.report);
  } catch (e) {
    if (!(e instanceof ReportConfigError)) throw e;
    throw new SpecError([{ ...locateIn(resolved.loaded, e.parts, 'value'), path: displayPath(e.parts), message: e.message.replace(/^report: /, '') }]);
  }
}
