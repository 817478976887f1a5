import * as tf from '@tensorflow/tfjs-core';
import type { DistillMethod, ImageOptimizer } from './method.js';

/**
 * The base "method" of a set that has no loss of its own (the random real subset): L_base = 0, so a
 * metadd stage on it optimises only the MetaDD terms, and its control arm leaves the images unchanged.
 * It cannot initialise a set: it only continues one.
 */
export function createNoBaseMethod(name: string, optimizer: ImageOptimizer): DistillMethod<null, null> {
  return {
    name,
    optimizer,
    stepsPerIteration: 1,
    init() {
      throw new Error(`'${name}' has no distillation loss: it can only be continued by a metadd stage`);
    },
    beginIteration: () => null,
    prepare: () => null,
    // Zero, but connected to the images, so the tape has a path to differentiate (gradient exactly 0).
    loss: (_ctx, _state, _prepared, syn) => tf.mul(tf.sum(syn), 0) as tf.Scalar,
    endIteration: () => undefined,
  };
}
