/**
 * The tensor engine: backend selection, the wasm kernels and the gradients
 * tfjs lacks or gets wrong at second order. See docs/engine.md.
 */
export {
  BACKEND_ENV_VAR,
  BACKEND_PREFERENCES,
  BackendUnavailableError,
  backendName,
  initBackend,
  resolvePreference,
  type BackendName,
  type BackendPreference,
} from './backend.js';
export { engineGradients, registerGradients } from './gradients/index.js';
export { registerCpuKernels, registerWasmKernels } from './kernels/index.js';
export { conv2dBackpropFilterNHWC } from './kernels/conv2d_backprop_filter.js';
export { conv2dBackpropInputNHWC } from './kernels/conv2d_backprop_input.js';
export { logSoftmax, softmaxCrossEntropy } from './ops.js';
export { originalGradient, originalKernel, replacedGradients, replacedKernels } from './registry.js';
