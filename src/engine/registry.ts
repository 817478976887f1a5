/**
 * Replacing kernels and gradients in tfjs-core's global registries without
 * losing the originals, so that our wrappers can delegate to them and so that
 * registering twice (two entry points, a test that re-inits) is harmless.
 */
import * as tf from '@tensorflow/tfjs-core';

interface EngineRegistryState {
  /** Original kernels by `${backend}/${kernel}`, captured before the first replacement. */
  originals: Map<string, tf.KernelConfig>;
  /** Kernel keys whose currently registered config is ours. */
  ours: Set<string>;
  /** Gradients we registered (kernel names), with tfjs-core's originals when there were any. */
  gradOriginals: Map<string, tf.GradConfig | undefined>;
}

// Kept on globalThis because tfjs-core's registries are process-global: if two
// copies of this module are loaded (dist/ and a test harness, say), they must
// agree on what the original kernels were instead of wrapping our wrapper.
const STATE_KEY = Symbol.for('metadd.engine.registry');
const globalSlot = globalThis as unknown as Record<symbol, EngineRegistryState | undefined>;
const state: EngineRegistryState = globalSlot[STATE_KEY] ?? {
  originals: new Map(),
  ours: new Set(),
  gradOriginals: new Map(),
};
globalSlot[STATE_KEY] = state;

const key = (backendName: string, kernelName: string): string => `${backendName}/${kernelName}`;

/** The kernel tfjs registered before we replaced it, if any. */
export function originalKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  const k = key(backendName, kernelName);
  return state.originals.get(k) ?? (state.ours.has(k) ? undefined : tf.getKernel(kernelName, backendName));
}

/**
 * Registers `config`, replacing (and remembering) whatever was registered under
 * its name. The original's setupFunc/disposeFunc are kept on the replacement:
 * the wasm backend runs setupFunc at initialisation to bind each kernel's C
 * entry point, and our wrappers delegate to those originals.
 */
export function replaceKernel(config: tf.KernelConfig): void {
  const k = key(config.backendName, config.kernelName);
  const current = tf.getKernel(config.kernelName, config.backendName);
  if (current !== undefined) {
    if (!state.ours.has(k)) state.originals.set(k, current);
    // registerKernel warns when the name is taken, so make room first.
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  const original = state.originals.get(k);
  tf.registerKernel({
    ...config,
    setupFunc: config.setupFunc ?? original?.setupFunc,
    disposeFunc: config.disposeFunc ?? original?.disposeFunc,
  });
  state.ours.add(k);
}

/** Registers a gradient, remembering tfjs-core's original (for docs/tests that compare). */
export function replaceGradient(config: tf.GradConfig): void {
  if (!state.gradOriginals.has(config.kernelName)) {
    const prev = tf.getGradient(config.kernelName);
    state.gradOriginals.set(config.kernelName, prev);
  }
  if (tf.getGradient(config.kernelName) !== undefined) tf.unregisterGradient(config.kernelName);
  tf.registerGradient(config);
}

/** Names of kernels we registered, as `backend/kernel`. */
export function replacedKernels(): string[] {
  return [...state.ours].sort();
}

/** Names of gradients we registered. */
export function replacedGradients(): string[] {
  return [...state.gradOriginals.keys()].sort();
}

/** tfjs-core's gradient for `kernelName` before we replaced it (undefined if there was none). */
export function originalGradient(kernelName: string): tf.GradConfig | undefined {
  return state.gradOriginals.has(kernelName) ? state.gradOriginals.get(kernelName) : tf.getGradient(kernelName);
}

/**
 * Kernel inputs arrive as TensorInfo in the types but as Tensors at run time
 * when the kernel is invoked through the engine (ops always pass Tensors).
 * Our kernels are composed of tf ops, which need real Tensors.
 */
export function asTensor<R extends tf.Rank = tf.Rank>(t: tf.TensorInfo | undefined, what: string): tf.Tensor<R> {
  if (t instanceof tf.Tensor) return t as tf.Tensor<R>;
  if (t === undefined) throw new Error(`metadd engine: kernel input '${what}' is missing`);
  throw new Error(`metadd engine: kernel input '${what}' is a TensorInfo, not a Tensor; call this kernel through tf ops`);
}
