import type { Dag } from './compile.js';
import type { MetaddParams } from '../stages/metadd.js';
import { cosineLr } from '../distill/schedule.js';

/** Below this share of the initial pixel lr at its first step, a refine stage is reported as barely moving its set. */
export const SPENT_LR_FRACTION = 0.1;

export interface SpentRefine {
  method: string;
  /** The base run's iterations (T) and the refine stage's (K). */
  base: number;
  refine: number;
  /** How many metadd stages refine with this T and K. */
  stages: number;
  /** The pixel learning rate of the first refine step, as a share of the initial one (later steps get less). */
  firstLrFraction: number;
}

/**
 * Refine stages whose base decays its pixel learning rate over the run (SRe2L's cosine schedule): the
 * driver continues the schedule over T + K, so the K refine steps start at 0.5 (1 + cos(pi T / (T + K)))
 * of the initial lr and go to 0. With K small against T neither arm moves the set much, so the comparison
 * shows little of MetaDD (measured: docs/results.md, "At a glance"): `plan` and `run` say so before running.
 */
export function spentRefineSchedules(dag: Dag): SpentRefine[] {
  const groups = new Map<string, SpentRefine>();
  for (const key of dag.order) {
    const node = dag.nodes.get(key);
    if (node?.kind !== 'metadd') continue;
    const p = node.params as unknown as MetaddParams;
    const t = p.base.iterations;
    if (p.mode !== 'refine' || p.base.schedule !== 'cosine' || typeof t !== 'number' || t <= 0) continue;
    const k = p.iterations;
    const fraction = cosineLr(1, t, t + k);
    if (fraction >= SPENT_LR_FRACTION) continue;
    const id = `${p.base.method}|${t}|${k}`;
    const g = groups.get(id) ?? { method: p.base.method, base: t, refine: k, stages: 0, firstLrFraction: fraction };
    g.stages++;
    groups.set(id, g);
  }
  return [...groups.values()];
}

export function describeSpentRefines(spent: SpentRefine[]): string[] {
  return spent.map(
    (s) =>
      `note: ${s.stages} metadd stage(s) refine ${s.method} sets whose cosine learning-rate schedule is nearly spent: continued over ` +
      `T + K = ${s.base} + ${s.refine} steps, the K refine steps run at ${(100 * s.firstLrFraction).toPrecision(2)}% of the initial pixel lr ` +
      'and less, so neither arm moves the set much (docs/metadd.md, "Refine mode"); ' +
      'metadd.mode: joint applies the terms through the whole schedule',
  );
}
