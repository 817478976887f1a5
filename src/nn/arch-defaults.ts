import { ARCH_NAMES } from './types.js';
import type { ArchName, ArchSpec, NormKind, ResolvedArch } from './types.js';

/**
 * Every option of each architecture when a spec leaves it out (reference networks,
 * VICO-UoE/DatasetCondensation networks.py), and which options a spec may change. The one table the
 * model zoo, the planner and spec validation read; kept free of TensorFlow.js so that planning and
 * validation do not load it. `depth` and `pool` only mean something for ConvNet; for the others the
 * table records what the architecture has.
 */
export const ARCH_DEFAULTS: Record<ArchName, Omit<ResolvedArch, 'name'>> = {
  convnet: { width: 128, depth: 3, norm: 'instance', act: 'relu', pool: 'avg', head: 'flatten' },
  mlp: { width: 128, depth: 3, norm: 'none', act: 'relu', pool: 'none', head: 'flatten' },
  lenet: { width: 6, depth: 2, norm: 'none', act: 'relu', pool: 'max', head: 'flatten' },
  alexnet: { width: 128, depth: 5, norm: 'none', act: 'relu', pool: 'max', head: 'flatten' },
  vgg11: { width: 64, depth: 8, norm: 'instance', act: 'relu', pool: 'max', head: 'flatten' },
  vgg19: { width: 64, depth: 16, norm: 'instance', act: 'relu', pool: 'max', head: 'flatten' },
  resnet18: { width: 64, depth: 4, norm: 'instance', act: 'relu', pool: 'none', head: 'flatten' },
  resnet50: { width: 64, depth: 4, norm: 'instance', act: 'relu', pool: 'none', head: 'flatten' },
  // Swin-S: width is the embedding width; layer norm over each token's channels (fixed).
  swin: { width: 96, depth: 4, norm: 'layer', act: 'gelu', pool: 'none', head: 'flatten' },
};

type Option = Exclude<keyof ArchSpec, 'name'>;

interface ArchRules {
  /** Options a spec may change. */
  configurable: Option[];
  norms?: NormKind[];
  heads?: ResolvedArch['head'][];
}

const ALL_NORMS: NormKind[] = ['none', 'batch', 'layer', 'instance', 'group'];

export const ARCH_RULES: Record<ArchName, ArchRules> = {
  convnet: { configurable: ['width', 'depth', 'norm', 'act', 'pool', 'head'], norms: ALL_NORMS },
  mlp: { configurable: ['width', 'act'], heads: ['flatten'] },
  lenet: { configurable: ['act', 'head'] },
  alexnet: { configurable: ['act', 'head'] },
  vgg11: { configurable: ['width', 'norm', 'act', 'head'], norms: ALL_NORMS },
  vgg19: { configurable: ['width', 'norm', 'act', 'head'], norms: ALL_NORMS },
  resnet18: { configurable: ['width', 'norm', 'act', 'head'], norms: ALL_NORMS },
  resnet50: { configurable: ['width', 'norm', 'act', 'head'], norms: ALL_NORMS },
  swin: { configurable: ['width', 'act', 'head'] },
};

const OPTIONS: Option[] = ['width', 'depth', 'norm', 'act', 'pool', 'head'];

/**
 * Every option of `arch` decided. Throws on an unknown name, on an option the architecture does not
 * let a spec change set to something other than what it has, and on unsupported values.
 */
export function resolveArch(arch: ArchName | ArchSpec): ResolvedArch {
  const spec: ArchSpec = typeof arch === 'string' ? { name: arch } : arch;
  const rules = (ARCH_RULES as Partial<Record<string, ArchRules>>)[spec.name];
  if (!rules) throw new Error(`unknown architecture '${String(spec.name)}' (known: ${ARCH_NAMES.join(', ')})`);
  const defaults = ARCH_DEFAULTS[spec.name];
  const out: ResolvedArch = { name: spec.name, ...defaults };
  for (const key of OPTIONS) {
    const value = spec[key];
    if (value === undefined) continue;
    if (!rules.configurable.includes(key) && value !== defaults[key]) {
      throw new Error(`${spec.name}: option '${key}' is fixed to ${String(defaults[key])} (configurable: ${rules.configurable.join(', ')})`);
    }
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  if (!Number.isInteger(out.width) || out.width < 1) throw new Error(`${spec.name}: width must be a positive integer`);
  if (!Number.isInteger(out.depth) || out.depth < 1) throw new Error(`${spec.name}: depth must be a positive integer`);
  if (rules.norms && !rules.norms.includes(out.norm)) throw new Error(`${spec.name}: unsupported norm '${out.norm}'`);
  if (rules.heads && !rules.heads.includes(out.head)) {
    throw new Error(`${spec.name}: head '${out.head}' is not available (no convolutional feature map)`);
  }
  return out;
}
