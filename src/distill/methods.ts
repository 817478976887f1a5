import type { ArchSpec as PlannedArch } from '../dag/arch.js';
import { zooArch } from './arch.js';
import { createDm } from './dm.js';
import { createGradientMatching } from './gradmatch.js';
import type { InitKind } from './init.js';
import type { DistillMethod } from './method.js';

/**
 * The key parameters of an iterative method as registry.ts writes them (a distill stage's params,
 * less the seed). Each method reads only its own fields.
 */
export interface IterativeParams {
  method: 'dm' | 'dc' | 'dsa';
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
}

function need(p: IterativeParams, key: keyof IterativeParams): number {
  const v = p[key];
  if (typeof v !== 'number') throw new Error(`distill method '${p.method}': parameter '${key}' is missing`);
  return v;
}

/** Builds the method implementation for stage parameters; `dataset` is the dataset artifact's name (DSA strategy). */
export function createMethod(p: IterativeParams, dataset: string): DistillMethod<unknown, unknown> {
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
    default:
      throw new Error(`distillation method '${String((p as { method: unknown }).method)}' is not iterative`);
  }
}
