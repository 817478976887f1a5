/**
 * Auxiliary networks for the MetaDD benchmarks, freshly initialised: a trained network costs the same per
 * step, and benchmarks should not need a pretrain stage.
 */
import type { AuxNet } from '../src/distill/metadd/aux.js';
import { buildModel } from '../src/nn/index.js';
import type { ArchSpec, InputShape } from '../src/nn/types.js';
import { createRng } from '../src/util/rng.js';

/** The 2-core budget's auxiliaries (experiments/fmnist-metadd-budget.yaml), gap heads. */
export const BUDGET_AUX: ArchSpec[] = [
  { name: 'convnet', width: 32, head: 'gap' },
  { name: 'lenet', head: 'gap' },
  { name: 'resnet18', width: 16, head: 'gap' },
];

/** The paper's four at their default widths, gap heads. */
export const PAPER_AUX: ArchSpec[] = [
  { name: 'convnet', head: 'gap' },
  { name: 'resnet18', head: 'gap' },
  { name: 'vgg11', head: 'gap' },
  { name: 'alexnet', head: 'gap' },
];

export function randomAuxNets(archs: ArchSpec[], input: InputShape): AuxNet[] {
  return archs.map((a, k) => {
    const model = buildModel(a, input);
    return { label: a.name, model, params: model.init(createRng(`aux-${k}`)), bnState: model.initBnState() };
  });
}
