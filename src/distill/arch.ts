import { normalizeArch, type ArchSpec as PlannedArch } from '../dag/arch.js';
import type { ArchSpec } from '../nn/types.js';
import type { Architecture } from '../spec/resolved.generated.js';

/**
 * The planner fills every architecture option with its own defaults (src/dag/arch.ts) so that equal
 * architectures get equal cache keys; the model zoo has its own defaults, and for ResNet-18 they are
 * spelled differently (planner depth 18 / avg pool, zoo depth 4 / no pool). Options that equal the
 * planner's default were not chosen by the user: drop them and let the zoo fill in its own.
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
