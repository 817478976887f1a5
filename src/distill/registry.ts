import type { Distill } from '../spec/resolved.generated.js';

/** What the planner needs to know about a distillation method, without loading its implementation. */
export interface MethodInfo {
  /** Whether the method computes with tensors (so its key includes the backend). */
  needsTensors: boolean;
  /** The parameters of the distill block that affect this method's output (its cache-key parameters). */
  keyParams(distill: Distill): Record<string, unknown>;
}

export const METHODS: Record<Distill['method'], MethodInfo> = {
  random: {
    needsTensors: false,
    keyParams: (d) => ({ method: d.method, ipc: d.ipc }),
  },
};
