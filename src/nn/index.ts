/** The model zoo, training loop, DSA augmentation and checkpoints. See docs/models.md. */
export * from './types.js';
export { archLabel, buildModel, canonicalArch, resolveArch, type ArchInput } from './zoo.js';
export { BN_MOMENTUM, GROUP_NORM_GROUPS, NORM_EPS, updateBnState } from './layers.js';
export { correctCount, crossEntropy, logSoftmax, softCrossEntropy, stopGradient, temperedTargets } from './losses.js';
export { disposeParams, sgdStep, zeroBuffers, type SgdConfig } from './sgd.js';
export { batchOf, fromNchw, limitPerClass, nchwToNhwc, nhwcToNchw, subset, type LabeledImages } from './data.js';
export {
  disposeTrainState,
  epochRng,
  evaluate,
  initTrainState,
  lrAt,
  train,
  type EvalResult,
  type TrainConfig,
  type TrainCurves,
  type TrainHooks,
  type TrainState,
} from './train.js';
export {
  DSA_DEFAULTS,
  DSA_OPS,
  DSA_STRATEGY,
  applyDsa,
  drawDsa,
  dsa,
  dsaStrategyFor,
  parseStrategy,
  type DsaOp,
  type DsaOptions,
  type DsaParams,
  type DsaTransform,
} from './dsa.js';
export { affinePlan, resample, translatePlan, type Resampling } from './sampler.js';
export {
  listSnapshots,
  loadModel,
  loadTrainState,
  paramFileName,
  readTensors,
  saveModel,
  saveSnapshot,
  saveTrainState,
  snapshotDir,
  writeTensors,
  type LoadedModel,
  type ModelJson,
} from './checkpoint.js';
