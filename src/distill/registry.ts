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
}

/**
 * Pixel optimiser of a metadd stage whose base has none ('random', no loss of its own): DC's image
 * optimiser, the gentlest of the reference ones (DM's lr 1 is scaled to DM's loss).
 */
export const RANDOM_BASE_OPTIMIZER = { lr: 0.1, momentum: 0.5 } as const;

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

export const METHODS: Record<Distill['method'], MethodInfo> = {
  random: {
    needsTensors: false,
    keyParams: (d) => ({ method: d.method, ipc: d.ipc }),
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
};
