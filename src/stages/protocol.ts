import type { Eval } from '../spec/resolved.generated.js';
import type { ArchInput } from '../nn/zoo.js';

/**
 * The training protocol shared by the stages that train a network (`pretrain`, `eval`): the fields the
 * spec writes under eval, metadd.pretrain and distill.sre2l.teacher, with the schema's own types (the
 * generated `Eval`), plus the network and the seed that separates otherwise identical runs.
 * `decay_epoch` null/absent: the stage's own rule (train.ts `decayEpoch`); `test_every` 0/absent: test
 * after the last epoch only.
 */
export type TrainProtocol = Pick<Eval, 'epochs' | 'lr' | 'momentum' | 'weight_decay' | 'batch' | 'augment'> &
  Partial<Pick<Eval, 'decay_epoch' | 'test_every'>> & {
    arch: ArchInput;
    /** Distinguishes otherwise identical runs; the draws come from ctx.rng. */
    seed: number;
    /** Memory bound (train.ts `microBatch`); absent unless the spec sets it, so other stages keep their keys. */
    micro_batch?: number;
  };
