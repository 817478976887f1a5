/**
 * Implementation versions of the stage kinds, part of every cache key. Bump one when the stage's
 * output for the same parameters changes, so the store recomputes exactly those stages.
 * Kept apart from the implementations so that planning does not load TensorFlow.js.
 */
export const STAGE_VERSIONS = {
  dataset: 1,
  pretrain: 1,
  distill: 2,
  metadd: 2,
  eval: 1,
  report: 2,
} as const;
