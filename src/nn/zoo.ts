import { buildAlexNet } from './models/alexnet.js';
import { buildConvNet } from './models/convnet.js';
import { buildLeNet } from './models/lenet.js';
import { buildMlp } from './models/mlp.js';
import { buildResNet18 } from './models/resnet.js';
import { buildVgg11 } from './models/vgg.js';
import { ARCH_DEFAULTS } from './arch-defaults.js';
import { ARCH_NAMES } from './types.js';
import type { ArchName, ArchSpec, InputShape, Model, NormKind, ResolvedArch } from './types.js';

type Option = Exclude<keyof ArchSpec, 'name'>;

interface ArchInfo {
  /** Every option's value, configurable or fixed by the architecture. */
  defaults: Omit<ResolvedArch, 'name'>;
  /** Options a spec may change. */
  configurable: Option[];
  norms?: NormKind[];
  heads?: ResolvedArch['head'][];
  build(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model;
}

const ALL_NORMS: NormKind[] = ['none', 'batch', 'layer', 'instance', 'group'];

/**
 * Defaults follow the reference networks (VICO-UoE/DatasetCondensation networks.py). `depth` and `pool`
 * only mean something for ConvNet; for the others the table records what the architecture has.
 */
const ARCHS: Record<ArchName, ArchInfo> = {
  convnet: {
    defaults: ARCH_DEFAULTS.convnet,
    configurable: ['width', 'depth', 'norm', 'act', 'pool', 'head'],
    norms: ALL_NORMS,
    build: buildConvNet,
  },
  mlp: {
    defaults: ARCH_DEFAULTS.mlp,
    configurable: ['width', 'act'],
    heads: ['flatten'],
    build: buildMlp,
  },
  lenet: {
    defaults: ARCH_DEFAULTS.lenet,
    configurable: ['act', 'head'],
    build: buildLeNet,
  },
  alexnet: {
    defaults: ARCH_DEFAULTS.alexnet,
    configurable: ['act', 'head'],
    build: buildAlexNet,
  },
  vgg11: {
    defaults: ARCH_DEFAULTS.vgg11,
    configurable: ['width', 'norm', 'act', 'head'],
    norms: ALL_NORMS,
    build: buildVgg11,
  },
  resnet18: {
    defaults: ARCH_DEFAULTS.resnet18,
    configurable: ['width', 'norm', 'act', 'head'],
    norms: ALL_NORMS,
    build: buildResNet18,
  },
};

const OPTIONS: Option[] = ['width', 'depth', 'norm', 'act', 'pool', 'head'];

/** Accepts the spec form (a bare name or an object). */
export type ArchInput = ArchName | ArchSpec;

/**
 * Every option of `arch` decided. Throws on an unknown name, on an option the architecture does not
 * have set to something other than what it has, and on unsupported values.
 */
export function resolveArch(arch: ArchInput): ResolvedArch {
  const spec: ArchSpec = typeof arch === 'string' ? { name: arch } : arch;
  const info = (ARCHS as Partial<Record<string, ArchInfo>>)[spec.name];
  if (!info) throw new Error(`unknown architecture '${String(spec.name)}' (known: ${ARCH_NAMES.join(', ')})`);
  const out: ResolvedArch = { name: spec.name, ...info.defaults };
  for (const key of OPTIONS) {
    const value = spec[key];
    if (value === undefined) continue;
    if (!info.configurable.includes(key) && value !== info.defaults[key]) {
      throw new Error(
        `${spec.name}: option '${key}' is fixed to ${String(info.defaults[key])} (configurable: ${info.configurable.join(', ')})`,
      );
    }
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  if (!Number.isInteger(out.width) || out.width < 1) throw new Error(`${spec.name}: width must be a positive integer`);
  if (!Number.isInteger(out.depth) || out.depth < 1) throw new Error(`${spec.name}: depth must be a positive integer`);
  if (info.norms && !info.norms.includes(out.norm)) throw new Error(`${spec.name}: unsupported norm '${out.norm}'`);
  if (info.heads && !info.heads.includes(out.head)) {
    throw new Error(`${spec.name}: head '${out.head}' is not available (no convolutional feature map)`);
  }
  return out;
}

/** The name plus every configurable option, defaults filled in: the form checkpoints and results store. */
export function canonicalArch(arch: ArchInput): ArchSpec {
  const full = resolveArch(arch);
  const out: ArchSpec = { name: full.name };
  for (const key of ARCHS[full.name].configurable) (out as unknown as Record<string, unknown>)[key] = full[key];
  return out;
}

/** Short human label, e.g. `convnet-w128-d3-instance` or `resnet18-batch-gap`. */
export function archLabel(arch: ArchInput): string {
  const full = resolveArch(arch);
  const d = ARCHS[full.name].defaults;
  const parts: string[] = [full.name];
  if (full.width !== d.width) parts.push(`w${full.width}`);
  if (full.depth !== d.depth) parts.push(`d${full.depth}`);
  if (full.norm !== d.norm) parts.push(full.norm);
  if (full.act !== d.act) parts.push(full.act);
  if (full.pool !== d.pool) parts.push(`${full.pool}pool`);
  if (full.head !== d.head) parts.push(full.head);
  return parts.join('-');
}

/** A functional network for images of the given shape (see docs/models.md). */
export function buildModel(arch: ArchInput, input: InputShape): Model {
  for (const k of ['channels', 'height', 'width', 'classes'] as const) {
    if (!Number.isInteger(input[k]) || input[k] < 1) throw new Error(`buildModel: input.${k} must be a positive integer`);
  }
  const full = resolveArch(arch);
  return ARCHS[full.name].build(full, input, canonicalArch(full));
}
