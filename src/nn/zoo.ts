import { buildAlexNet } from './models/alexnet.js';
import { buildConvNet } from './models/convnet.js';
import { buildLeNet } from './models/lenet.js';
import { buildMlp } from './models/mlp.js';
import { buildResNet } from './models/resnet.js';
import { buildSwin } from './models/swin.js';
import { buildVgg } from './models/vgg.js';
import { ARCH_DEFAULTS, ARCH_RULES, resolveArch } from './arch-defaults.js';
import type { ArchName, ArchSpec, InputShape, Model, ResolvedArch } from './types.js';

type ArchBuilder = (arch: ResolvedArch, input: InputShape, canonical: ArchSpec) => Model;

const BUILDERS: Record<ArchName, ArchBuilder> = {
  convnet: buildConvNet,
  mlp: buildMlp,
  lenet: buildLeNet,
  alexnet: buildAlexNet,
  vgg11: buildVgg,
  vgg19: buildVgg,
  resnet18: buildResNet,
  resnet50: buildResNet,
  swin: buildSwin,
};

/** Accepts the spec form (a bare name or an object). */
export type ArchInput = ArchName | ArchSpec;

export { resolveArch };

/** The name plus every configurable option, defaults filled in: the form checkpoints and results store. */
export function canonicalArch(arch: ArchInput): ArchSpec {
  const full = resolveArch(arch);
  const out: ArchSpec = { name: full.name };
  for (const key of ARCH_RULES[full.name].configurable) (out as unknown as Record<string, unknown>)[key] = full[key];
  return out;
}

/** Short human label, e.g. `convnet-w128-d3-instance` or `resnet18-batch-gap`. */
export function archLabel(arch: ArchInput): string {
  const full = resolveArch(arch);
  const d = ARCH_DEFAULTS[full.name];
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
  return BUILDERS[full.name](full, input, canonicalArch(full));
}
