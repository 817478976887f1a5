import { normalizeArch } from '../dag/arch.js';
import type { Distill } from '../spec/resolved.generated.js';

/** What the planner needs to know about a distillation method, without loading its implementation. */
export interface MethodInfo {
  /** Whether the method computes with tensors (so its key includes the backend). */
  needsTensors: boolean;
  /**
   * The parameters of the distill block that affect this method's output (its cache-key parameters),
   * with every reference rule resolved (a null lr or loop count becomes the number it stands for).
   * Throws an Error naming the spec field when a rule does not cover the cell.
   */
  keyParams(distill: Distill): Record<string, unknown>;
  /**
   * The set is the real training data itself ('whole'): it depends on neither the seed nor the IPC,
   * so one stage serves every cell, and it is not a distilled set that MetaDD could align.
   */
  realData?: true;
}

/**
 * Pixel optimiser of a metadd stage whose base has none ('random', no loss of its own): DC's image
 * optimiser, the gentlest of the reference ones (DM's lr 1 is scaled to DM's loss).
 */
export const RANDOM_BASE_OPTIMIZER = { kind: 'sgd', lr: 0.1, momentum: 0.5 } as const;

/** Reference outer/inner loops by IPC (DatasetCondensation utils.get_loops). */
const LOOPS: Record<number, [number, number]> = { 1: [1, 1], 10: [10, 50], 20: [20, 25], 30: [30, 20], 40: [40, 15], 50: [50, 10] };

function gradMatchKey(d: Distill, variant: 'dc' | 'dsa'): Record<string, unknown> {
  const p = variant === 'dc' ? d.dc : d.dsa;
  const ref = LOOPS[d.ipc];
  const outer = p.outer_loop ?? ref?.[0];
  const inner = p.inner_loop ?? ref?.[1];
  if (outer === undefined || inner === undefined) {
    throw new Error(
      `distill.${variant}: the reference defines outer/inner loops only for IPC ${Object.keys(LOOPS).join(', ')}; ` +
        `set distill.${variant}.outer_loop and distill.${variant}.inner_loop for IPC ${d.ipc}`,
    );
  }
  return {
    method: variant,
    ipc: d.ipc,
    iterations: p.iterations,
    lr_img: p.lr_img,
    momentum: p.momentum,
    batch_real: p.batch_real,
    init: p.init,
    arch: normalizeArch(p.arch),
    outer_loop: outer,
    inner_loop: inner,
    lr_net: p.lr_net,
    momentum_net: p.momentum_net,
    batch_train: p.batch_train,
  };
}

/**
 * SRe2L's recover parameters. The teacher (its architecture and training) reaches the distill stage as
 * its `teacher` input, whose key already holds them, and the relabel temperature only concerns the eval
 * stages: neither is repeated here, so changing T never re-runs the recovery.
 */
function sre2lKey(d: Distill): Record<string, unknown> {
  const p = d.sre2l;
  if (normalizeArch(p.teacher.arch).norm !== 'batch') {
    throw new Error("distill.sre2l.teacher.arch: SRe2L matches batch-norm statistics, so the teacher needs norm: batch");
  }
  return {
    method: 'sre2l',
    ipc: d.ipc,
    iterations: p.iterations,
    lr_img: p.lr_img,
    beta1: p.beta1,
    beta2: p.beta2,
    eps: p.eps,
    schedule: p.schedule,
    r_bn: p.r_bn,
    first_bn_multiplier: p.first_bn_multiplier,
    jitter: p.jitter,
    flip: p.flip,
    init: p.init,
  };
}

/**
 * MTT's distill-stage parameters. The expert protocol (epochs, lr, batch, augmentation, training
 * subset) reaches the stage through its expert inputs, whose keys hold it; only their count is here,
 * for the method to know how many inputs to read.
 */
function mttKey(d: Distill): Record<string, unknown> {
  const p = d.mtt;
  if (p.max_start_epoch - 1 + p.expert_epochs_matched > p.expert_epochs) {
    throw new Error(
      `distill.mtt.max_start_epoch: a start epoch up to ${p.max_start_epoch - 1} plus expert_epochs_matched ${p.expert_epochs_matched} ` +
        `passes the experts' last epoch (${p.expert_epochs}); lower max_start_epoch or raise expert_epochs`,
    );
  }
  return {
    method: 'mtt',
    ipc: d.ipc,
    iterations: p.iterations,
    experts: p.experts,
    max_start_epoch: p.max_start_epoch,
    expert_epochs_matched: p.expert_epochs_matched,
    syn_steps: p.syn_steps,
    batch_syn: p.batch_syn,
    lr_img: p.lr_img,
    momentum: p.momentum,
    lr_lr: p.lr_lr,
    lr_teacher: p.lr_teacher,
    init: p.init,
    arch: normalizeArch(p.arch),
    dsa: p.dsa,
    // Only when on: the sets distilled before the option existed keep their keys.
    ...(p.clip_pixels ? { clip_pixels: true } : {}),
  };
}

export const METHODS: Record<Distill['method'], MethodInfo> = {
  random: {
    needsTensors: false,
    keyParams: (d) => ({ method: d.method, ipc: d.ipc }),
  },
  // The whole training set is one set whatever the IPC: every IPC cell shares it.
  whole: {
    needsTensors: false,
    keyParams: () => ({ method: 'whole' }),
    realData: true,
  },
  dm: {
    needsTensors: true,
    keyParams: (d) => ({
      method: 'dm',
      ipc: d.ipc,
      iterations: d.dm.iterations,
      lr_img: d.dm.lr_img ?? (d.ipc >= 100 ? 10 : 1),
      momentum: d.dm.momentum,
      batch_real: d.dm.batch_real,
      init: d.dm.init,
      arch: normalizeArch(d.dm.arch),
      dsa: d.dm.dsa,
    }),
  },
  dc: { needsTensors: true, keyParams: (d) => gradMatchKey(d, 'dc') },
  dsa: { needsTensors: true, keyParams: (d) => gradMatchKey(d, 'dsa') },
  sre2l: { needsTensors: true, keyParams: sre2lKey },
  mtt: { needsTensors: true, keyParams: mttKey },
};
