import type { Plan } from '../exec/plan-spec.js';
import type { MetaddParams } from '../stages/metadd.js';
import type { ImageBatch } from '../distill/metadd/diagnostics.js';
import type { AuxNet } from '../distill/metadd/aux.js';
import { createRng } from '../util/rng.js';
import { classMeans, layoutAgainst, type ClassMeans, type Layout } from './layout.js';

/** What the auxiliary networks see in one set: ratios at each threshold and their accuracy on it. */
export interface SetDiagnosis {
  /** Artifact key of the set ('real': the metadd stage's key, whose random source drew the images). */
  key: string;
  images: number;
  /** Meta-feature ratio at each threshold of `taus` (null: no pixel reaches it). */
  meta: (number | null)[];
  /** Per network, its heterogeneous-feature ratio at each threshold. */
  heterogeneous: (number | null)[][];
  /** Per network, the fraction of the set it classifies as the set's labels. */
  accuracy: number[];
  /** Pixel space against the real training images' class means (src/report/layout.ts); absent without the dataset. */
  layout?: Layout;
}

export interface StageDiagnosis {
  /** The metadd stage. */
  key: string;
  label: string;
  arm: MetaddParams['arm'];
  mode: MetaddParams['mode'];
  /** The stage's own threshold (the one its diagnostics.json used). */
  tau: number;
  /** Real training images, the base method's set (the cell's distill stage) and the stage's output. */
  real?: SetDiagnosis;
  base?: SetDiagnosis;
  aligned?: SetDiagnosis;
}

export interface DiagnosisGroup {
  /** The auxiliary networks' labels, in the spec's order (their pretrain keys identify the group). */
  aux: string[];
  auxKeys: string[];
  stages: StageDiagnosis[];
}

export interface Diagnosis {
  spec: string;
  taus: number[];
  groups: DiagnosisGroup[];
  /** Labels of the artifacts not in the store yet, whose rows are left out. */
  missing: string[];
}

/**
 * `metadd diagnose`: the meta- and heterogeneous-feature ratios (docs/metadd.md) of every set a spec's
 * MetaDD cells involve, under the auxiliary networks of each cell, from what the store holds. The metadd
 * stage records the same for its starting set, which in joint mode is the method's initialisation; this
 * adds the base method's own final set, the one a joint arm is compared with, and other thresholds; and,
 * with no network in between, how each set lies against the real class means in pixel space.
 */
export async function diagnosePlan(plan: Plan, options: { taus?: number[] } = {}): Promise<Diagnosis> {
  const { initBackend } = await import('../engine/backend.js');
  const { loadAuxNet, disposeAuxNet } = await import('../distill/metadd/aux.js');
  const { diagnoseSetAt, sampleRealImages } = await import('../distill/metadd/diagnostics.js');
  const { readImageSet } = await import('../distill/image-set.js');
  const { loadDatasetArtifact } = await import('../data/artifact.js');

  const { dag, store } = plan;
  const stages = dag.cells.filter((c) => c.metaddKey !== undefined);
  if (stages.length === 0) {
    throw new Error(`${plan.resolved.base.name}: no cell has a MetaDD arm to diagnose (sweep metadd.arm over control or metadd)`);
  }
  const missing = new Set<string>();
  const present = (key: string): boolean => {
    if (store.has(key)) return true;
    missing.add(dag.nodes.get(key)?.label ?? key);
    return false;
  };
  const nodeOf = (key: string) => dag.nodes.get(key) ?? missingNode(key);
  // By default each threshold the stages use (one, unless the spec sweeps metadd.tau).
  const taus = options.taus ?? [...new Set(stages.map((c) => (nodeOf(c.metaddKey as string).params as unknown as MetaddParams).tau))].sort((a, b) => a - b);
  await initBackend(plan.backend);

  const groups = new Map<string, DiagnosisGroup & { nets?: AuxNet[] }>();
  const datasets = new Map<string, ReturnType<typeof loadDatasetArtifact>>();
  const means = new Map<string, ClassMeans>();
  const seen = new Set<string>();
  // Sets shared by several stages (a base set by its control and metadd arms) are looked at once.
  const cache = new Map<string, Omit<SetDiagnosis, 'key'>>();
  try {
    for (const cell of stages) {
      const key = cell.metaddKey as string;
      if (seen.has(key)) continue;
      seen.add(key);
      const node = nodeOf(key);
      const p = node.params as unknown as MetaddParams;
      const groupKey = cell.auxKeys.join(',');
      let group = groups.get(groupKey);
      if (!group) {
        const nets = cell.auxKeys.every(present) ? cell.auxKeys.map((k) => loadAuxNet(store.view(k).dir)) : undefined;
        group = { aux: nets ? nets.map((n) => n.label) : cell.auxKeys.map((k) => nodeOf(k).label), auxKeys: cell.auxKeys, stages: [], nets };
        groups.set(groupKey, group);
      }
      const row: StageDiagnosis = { key, label: node.label, arm: p.arm, mode: p.mode, tau: p.tau };
      group.stages.push(row);
      const nets = group.nets;
      if (!nets) continue;
      let ds = datasets.get(cell.datasetKey);
      if (!ds && present(cell.datasetKey)) {
        ds = loadDatasetArtifact(store.view(cell.datasetKey).dir);
        datasets.set(cell.datasetKey, ds);
        const { classes, channels, height, width } = ds.meta;
        means.set(cell.datasetKey, classMeans(ds.trainX, ds.trainY, classes, channels * height * width));
      }
      const real = means.get(cell.datasetKey);
      const look = (setKey: string, set: ImageBatch): SetDiagnosis => {
        const memo = `${groupKey}|${setKey}`;
        let d = cache.get(memo);
        if (!d) {
          const { images, ratios, accuracy } = diagnoseSetAt(nets, set, taus);
          d = { images, meta: ratios.map((r) => r.meta), heterogeneous: nets.map((_, k) => ratios.map((r) => r.heterogeneous[k])), accuracy, ...(real ? { layout: layoutAgainst(real, set) } : {}) };
          cache.set(memo, d);
        }
        return { key: setKey, ...d };
      };
      if (ds) {
        // The stage's own draw: its random source is seeded by its seed key.
        row.real = look(`real:${key}`, sampleRealImages(ds, p.diagnostics.real_per_class, createRng(node.seedKey)));
      }
      if (present(cell.distillKey)) row.base = look(cell.distillKey, readImageSet(store.view(cell.distillKey).dir));
      if (present(key)) row.aligned = look(key, readImageSet(store.view(key).dir));
    }
  } finally {
    for (const g of groups.values()) for (const net of g.nets ?? []) disposeAuxNet(net);
  }
  return {
    spec: plan.resolved.base.name,
    taus,
    groups: [...groups.values()].map(({ nets: _nets, ...g }) => g),
    missing: [...missing],
  };
}

function missingNode(key: string): never {
  throw new Error(`diagnose: the DAG has no stage ${key}`);
}
