/**
 * Implementation versions of the stage kinds, part of every cache key. Bump one when the stage's
 * output for the same parameters changes, so the store recomputes exactly those stages.
 * Kept apart from the implementations so that planning does not load TensorFlow.js.
 *
 * pretrain 2, distill 3, metadd 3, eval 2: the wasm Conv2DBackpropFilter, and Conv2DBackpropInput for up to
 * 4 input channels, became our SIMD kernels, whose float32 sums run in another order than XNNPACK's (same
 * values to ~1e-5, not the same bytes).
 * report 3: tables with MetaDD and control rows are followed by their effect table; results.csv has a
 * measure column.
 * report 4: effect-table notes name a row without the paths that do not apply to it (shown '–'); a
 * table can be followed by its comparison with the baseline rows (versus_baseline).
 */
export const STAGE_VERSIONS = {
  dataset: 1,
  pretrain: 2,
  distill: 3,
  metadd: 3,
  eval: 2,
  report: 4,
} as const;
