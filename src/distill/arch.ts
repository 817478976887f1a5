import { normalizeArch, type ArchSpec as PlannedArch } from '../dag/arch.js';
import type { ArchSpec } from '../nn/types.js';
import type { Architecture } from '../spec/resolved.generated.js';

/**
 * The planner fills in every architecture option (src/dag/arch.ts) so that equal architectures get
 * equal cache keys, including options an architecture fixes; the zoo refuses a fixed option that is
 * set explicitly. Options equal to the shared default (src/nn/arch-defaults.ts) were not chosen by
 * the user: drop them and let the zoo fill them in.
 */
export function zooArch(arch: Architecture | PlannedArch): ArchSpec {
  const given = normalizeArch(arch as Architecture);
  const defaults = normalizeArch(given.name);
  const out: ArchSpec = { name: given.name };
  for (const key of ['width', 'depth', 'norm', 'act', 'pool', 'head'] as const) {
    if (given[key] !== defaults[key]) (out as unknown as Record<string, unknown>)[key] = given[key];
  }
  return out;
}
