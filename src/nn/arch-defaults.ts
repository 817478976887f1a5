import type { ArchName, ResolvedArch } from './types.js';

/**
 * Every option of each architecture when a spec leaves it out (reference networks,
 * VICO-UoE/DatasetCondensation networks.py). The one table both the model zoo and the planner read;
 * kept free of TensorFlow.js so that planning does not load it.
 */
export const ARCH_DEFAULTS: Record<ArchName, Omit<ResolvedArch, 'name'>> = {
  convnet: { width: 128, depth: 3, norm: 'instance', act: 'relu', pool: 'avg', head: 'flatten' },
  mlp: { width: 128, depth: 3, norm: 'none', act: 'relu', pool: 'none', head: 'flatten' },
  lenet: { width: 6, depth: 2, norm: 'none', act: 'relu', pool: 'max', head: 'flatten' },
  alexnet: { width: 128, depth: 5, norm: 'none', act: 'relu', pool: 'max', head: 'flatten' },
  vgg11: { width: 64, depth: 8, norm: 'instance', act: 'relu', pool: 'max', head: 'flatten' },
  resnet18: { width: 64, depth: 4, norm: 'instance', act: 'relu', pool: 'none', head: 'flatten' },
};
