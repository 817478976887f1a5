import type { ArchSpec as PlannedArch } from '../dag/arch.js';
import { zooArch } from './arch.js';
import { createDm } from './dm.js';
import { createGradientMatching } from './gradmatch.js';
import type { InitKind } from './init.js';
import type { DistillMethod } from './method.js';
import { createMtt } from './mtt.js';
import { sre2lFromParams, type Sre2lParams } from './sre2l.js';

/**
 * The key parameters of an iterative method as registry.ts writes them (a distill stage's params,
 * less the seed). Each method reads only its own fields.
 */
export interface IterativeParams {
  method: 'dm' | 'dc' | 'dsa' | 'sre2l' | 'mtt';
  ipc: number;
  iterations: number;
  lr_img: number;
  momentum: number;
  batch_real: number;
  init: InitKind;
  arch: PlannedArch;
  dsa?: boolean;
  outer_loop?: number;
  inner_loop?: number;
  lr_net?: number;
  momentum_net?: number;
  batch_train?: number;
  experts?: number;
  max_start_epoch?: number;
  expert_epochs_matched?: number;
  syn_steps?: number;
  /** null: the whole set. */
  batch_syn?: number | null;
  lr_lr?: number;
  lr_teacher?: number;
  /** MTT: absent (off) in keys from before the option. */
  clip_pixels?: boolean;
}

/** The directories of inputs `<prefix>0`..`<prefix>count-1`. */
function numberedInputs(method: string, inputs: Record<string, string>, prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const dir = inputs[`${prefix}${i}`];
    if (dir === undefined) throw new Error(`distill method '${method}': missing input '${prefix}${i}' (of ${count})`);
    return dir;
  });
}

function need(p: IterativeParams, key: keyof IterativeParams): number {
  const v = p[key];
  if (typeof v !== 'number') throw new Error(`distill method '${p.method}': parameter '${key}' is missing`);
  return v;
}

/**
 * Builds the method implementation for stage parameters; `dataset` is the dataset artifact's name (DSA
 * strategy); `inputs` maps the stage's input names to artifact directories (MTT: `expert0`..).
 */
export function createMethod(p: IterativeParams, dataset: string, inputs: Record<string, string>): DistillMethod<unknown, unknown> {
  // SRe2L has no network of its own to build: its frozen teacher is an input.
  if (p.method === 'sre2l') return sre2lFromParams(p as unknown as Sre2lParams, dataset, inputs) as DistillMethod<unknown, unknown>;
  const arch = zooArch(p.arch);
  switch (p.method) {
    case 'dm':
      return createDm({
        lr: p.lr_img,
        momentum: p.momentum,
        batchReal: p.batch_real,
        init: p.init,
        arch,
        dsa: p.dsa ?? true,
        dataset,
      }) as DistillMethod<unknown, unknown>;
    case 'dc':
    case 'dsa':
      return createGradientMatching({
        variant: p.method,
        lr: p.lr_img,
        momentum: p.momentum,
        batchReal: p.batch_real,
        init: p.init,
        arch,
        outerLoop: need(p, 'outer_loop'),
        innerLoop: need(p, 'inner_loop'),
        lrNet: need(p, 'lr_net'),
        momentumNet: need(p, 'momentum_net'),
        batchTrain: need(p, 'batch_train'),
        dataset,
      }) as DistillMethod<unknown, unknown>;
    case 'mtt':
      return createMtt({
        lr: p.lr_img,
        momentum: p.momentum,
        lrLr: need(p, 'lr_lr'),
        lrTeacher: need(p, 'lr_teacher'),
        synSteps: need(p, 'syn_steps'),
        batchSyn: p.batch_syn ?? null,
        maxStartEpoch: need(p, 'max_start_epoch'),
        expertEpochsMatched: need(p, 'expert_epochs_matched'),
        init: p.init,
        arch,
        dsa: p.dsa ?? true,
        clipPixels: p.clip_pixels === true,
        dataset,
        experts: numberedInputs('mtt', inputs, 'expert', need(p, 'experts')),
      }) as DistillMethod<unknown, unknown>;
    default:
      throw new Error(`distillation method '${String((p as { method: unknown }).method)}' is not iterative`);
  }
}
