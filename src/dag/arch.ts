import type { Architecture, ArchName } from '../spec/resolved.generated.js';
import { ARCH_DEFAULTS } from '../nn/arch-defaults.js';

/** An architecture with every option spelled out: the form that goes into cache keys and model builders. */
export interface ArchSpec {
  name: ArchName;
  width: number;
  depth: number;
  norm: 'none' | 'batch' | 'layer' | 'instance' | 'group';
  act: 'relu' | 'leakyrelu' | 'sigmoid' | 'tanh' | 'gelu';
  pool: 'none' | 'max' | 'avg';
  head: 'flatten' | 'gap';
}

/** Every option filled in from the zoo's defaults (src/nn/arch-defaults.ts): planner and builders share one table. */
export function normalizeArch(arch: Architecture): ArchSpec {
  const given = typeof arch === 'string' ? { name: arch } : arch;
  return { name: given.name, ...ARCH_DEFAULTS[given.name], ...stripUndefined(given) } as ArchSpec;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Short human label: `convnet`, `convnet-w32`, `resnet18-bn`, `convnet-gap`. */
export function archLabel(arch: ArchSpec): string {
  const d = ARCH_DEFAULTS[arch.name];
  const parts: string[] = [arch.name];
  if (arch.width !== d.width) parts.push(`w${arch.width}`);
  if (arch.depth !== d.depth) parts.push(`d${arch.depth}`);
  if (arch.norm !== d.norm) parts.push(arch.norm === 'batch' ? 'bn' : arch.norm === 'none' ? 'nonorm' : arch.norm);
  if (arch.act !== d.act) parts.push(arch.act);
  if (arch.pool !== d.pool) parts.push(`${arch.pool}pool`);
  if (arch.head !== d.head) parts.push(arch.head);
  return parts.join('-');
}
