import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { canonicalJson } from '../spec/paths.js';
import type { ManifestCompute, StageDef } from '../store/store.js';
import { median } from '../util/median.js';
import { readJsonIfReadable } from '../util/read-json.js';
import type { Plan } from './plan-spec.js';

/** What the store's history says a stage still to run will cost. */
export interface StageEstimate {
  /** Median seconds of its measured twins (each twin's `measuredSeconds`); null when it has none. */
  seconds: number | null;
  /** How many finished stages in the store it was estimated from. */
  twins: number;
}

export interface PlanEstimate {
  /** Per stage estimated. */
  stages: Map<string, StageEstimate>;
  toRun: number;
  /** Stages to run that have at least one twin. */
  estimated: number;
  /** Sum of the estimates of those stages (of what running ones have left): worker seconds, not wall time (workers run in parallel). */
  seconds: number;
}

/**
 * What a finished stage's attempt says the stage costs on a machine to itself: its wall time, or its
 * CPU time where that is less. A single-threaded worker that was paused or shared its core with other
 * processes spent more wall time than the stage needs; a multi-threaded backend spends more CPU time
 * than wall time, and then the wall time is the cost.
 */
export function measuredSeconds(compute: ManifestCompute): number {
  return compute.cpuSeconds === undefined ? compute.seconds : Math.min(compute.seconds, compute.cpuSeconds);
}

type DefLookup = (key: string) => StageDef | undefined;

/**
 * The part of a stage that decides what it costs: kind, version, backend and parameters without the
 * seed, and the same for each of its inputs (an evaluation's cost depends on how many images its set
 * has, which only the distill stage upstream says). Two stages with one signature differ only in
 * their random draws, so the measured time of one predicts the other's. Undefined when the
 * definition of the stage or of something upstream is not known.
 */
function costSignature(key: string, lookup: DefLookup, memo: Map<string, string | undefined>): string | undefined {
  if (memo.has(key)) return memo.get(key);
  memo.set(key, undefined); // a cycle cannot happen in a DAG; this only keeps a corrupt store from recursing forever
  const def = lookup(key);
  let signature: string | undefined;
  if (def) {
    const params = { ...def.params };
    delete params.seed;
    const inputs: [string, string][] = [];
    let known = true;
    for (const [name, inputKey] of Object.entries(def.inputs).sort(([a], [b]) => a.localeCompare(b))) {
      const s = costSignature(inputKey, lookup, memo);
      if (s === undefined) known = false;
      else inputs.push([name, s]);
    }
    if (known) {
      signature = createHash('sha256')
        .update(canonicalJson({ kind: def.kind, version: def.version, backend: def.backend, params, inputs }))
        .digest('hex');
    }
  }
  memo.set(key, signature);
  return signature;
}

/**
 * Estimates the given stages of the plan (those the caller found still to run) from the stages this
 * store has finished that are their twins (the same signature: the same stage apart from the seed).
 * Only complete measurements count: artifacts from before timings were recorded and stages that
 * resumed from saved progress are left out. A stage in `leftFractions` (a running one) adds only that
 * fraction of its estimate to the total.
 */
export function estimatePlan(plan: Plan, keys: string[], leftFractions: ReadonlyMap<string, number> = new Map()): PlanEstimate {
  // A missing or damaged definition only costs an estimate, never the plan.
  const lookup: DefLookup = (key) =>
    plan.dag.nodes.get(key) ??
    readJsonIfReadable<StageDef>(plan.store.stageDefPath(key)) ??
    readJsonIfReadable<StageDef>(join(plan.store.objectDir(key), 'stage.json'));
  const memo = new Map<string, string | undefined>();
  const measured = new Map<string, number[]>();
  for (const m of plan.store.listManifests()) {
    if (!m.compute || m.compute.resumed) continue;
    const s = costSignature(m.key, lookup, memo);
    if (s === undefined) continue;
    const list = measured.get(s) ?? [];
    list.push(measuredSeconds(m.compute));
    measured.set(s, list);
  }
  const stages = new Map<string, StageEstimate>();
  let estimated = 0;
  let seconds = 0;
  for (const key of keys) {
    // Without a single measurement there is nothing to match: skip the signatures (a fresh store).
    const s = measured.size > 0 ? costSignature(key, lookup, memo) : undefined;
    const twins = s === undefined ? [] : (measured.get(s) ?? []);
    const estimate = median(twins) ?? null;
    stages.set(key, { seconds: estimate, twins: twins.length });
    if (estimate !== null) {
      estimated++;
      seconds += estimate * (leftFractions.get(key) ?? 1);
    }
  }
  return { stages, toRun: stages.size, estimated, seconds };
}

/** 45 s, 12 min, 3.4 h: as precise as a time measured under varying load deserves. */
export function formatDuration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
