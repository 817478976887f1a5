import type { ArchInput } from '../nn/zoo.js';

/**
 * The training protocol shared by the stages that train a network (`pretrain`, `eval`): what the spec
 * writes under metadd.pretrain, distill.sre2l.teacher and eval, in the spec's own field names.
 */
export interface TrainProtocol {
  arch: ArchInput;
  epochs: number;
  lr: number;
  momentum: number;
  weight_decay: number;
  batch: number;
  augment: 'none' | 'dsa';
  /** 1-based epoch after which lr x0.1 (train.ts `decayEpoch`); null/absent: the stage's own rule. */
  decay_epoch?: number | null;
  /** Test accuracy every N epochs as well as after the last (0/absent: after the last only). */
  test_every?: number;
  /** Distinguishes otherwise identical runs; the draws come from ctx.rng. */
  seed: number;
}
