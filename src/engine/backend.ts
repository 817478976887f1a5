/**
 * Backend selection for metadd.
 *
 * Order for 'auto': 'tensorflow' (native libtensorflow through
 * @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node), then 'wasm', then
 * 'cpu'. Precedence: an explicit preference (CLI flag, spec field) wins;
 * METADD_BACKEND is only consulted when the preference is 'auto' (or absent),
 * so a spec that pins a backend behaves the same on every machine while a
 * user can still steer the default from the environment.
 *
 * Every successful init also registers this engine's gradients (tfjs-core's
 * CommonJS build registers none) and, for wasm, its kernels. Both are
 * idempotent.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerGradients } from './gradients/index.js';
import { registerCpuKernels, registerWasmKernels } from './kernels/index.js';

export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];
export type BackendName = Exclude<BackendPreference, 'auto'>;

export const BACKEND_ENV_VAR = 'METADD_BACKEND';

function isPreference(s: string): s is BackendPreference {
  return (BACKEND_PREFERENCES as readonly string[]).includes(s);
}

/** The concrete preference after applying METADD_BACKEND to 'auto'. */
export function resolvePreference(preference: string = 'auto', env: NodeJS.ProcessEnv = process.env): BackendPreference {
  const p = preference.trim().toLowerCase();
  if (!isPreference(p)) {
    throw new Error(`unknown backend '${preference}': expected one of ${BACKEND_PREFERENCES.join(', ')}`);
  }
  if (p !== 'auto') return p;
  const fromEnv = env[BACKEND_ENV_VAR]?.trim().toLowerCase();
  if (fromEnv === undefined || fromEnv === '') return 'auto';
  if (!isPreference(fromEnv)) {
    throw new Error(
      `${BACKEND_ENV_VAR}='${env[BACKEND_ENV_VAR] ?? ''}' is not a backend: expected one of ${BACKEND_PREFERENCES.join(', ')}`,
    );
  }
  return fromEnv;
}

/** Thrown when a specifically requested backend cannot be loaded. */
export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    message: string,
  ) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

// Variable specifiers keep TypeScript from resolving these optional packages
// at compile time; they are optionalDependencies that usually fail to install.
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function loadTensorflow(): Promise<void> {
  const failures: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow') !== null || tf.findBackendFactory('tensorflow') !== null) {
        if (await tf.setBackend('tensorflow')) return;
        failures.push(`${pkg}: backend 'tensorflow' failed to initialise`);
      } else {
        failures.push(`${pkg}: loaded but registered no 'tensorflow' backend (a second copy of tfjs-core?)`);
      }
    } catch (e) {
      failures.push(`${pkg}: ${errorText(e)}`);
    }
  }
  throw new BackendUnavailableError(
    'tensorflow',
    `backend 'tensorflow' is not available (${failures.join('; ')}). Install it with ` +
      '`npm install @tensorflow/tfjs-node` (or @tensorflow/tfjs-node-gpu for CUDA); with npm 11 its install script ' +
      'must be allowed (`npm install-scripts approve @tensorflow/tfjs-node`) because it downloads libtensorflow. ' +
      `Or choose another backend: ${BACKEND_ENV_VAR}=wasm.`,
  );
}

let wasmPathsSet = false;

async function loadWasm(): Promise<void> {
  let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasmModule = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendUnavailableError(
      'wasm',
      `backend 'wasm' is not available: ${errorText(e)}. Install it with \`npm install @tensorflow/tfjs-backend-wasm\`.`,
    );
  }
  if (!wasmPathsSet) {
    // In Node the .wasm binaries are read from disk next to the package's
    // dist/ files; without this the loader looks relative to the CWD.
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasmModule.setWasmPaths(dir + path.sep);
    wasmPathsSet = true;
  }
  registerWasmKernels();
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendUnavailableError('wasm', "backend 'wasm' failed to initialise (see the warning above)");
  }
}

async function loadCpu(): Promise<void> {
  try {
    await import('@tensorflow/tfjs-backend-cpu');
  } catch (e) {
    throw new BackendUnavailableError(
      'cpu',
      `backend 'cpu' is not available: ${errorText(e)}. Install it with \`npm install @tensorflow/tfjs-backend-cpu\`.`,
    );
  }
  registerCpuKernels();
  if (!(await tf.setBackend('cpu'))) throw new BackendUnavailableError('cpu', "backend 'cpu' failed to initialise");
}

const LOADERS: Record<BackendName, () => Promise<void>> = {
  tensorflow: loadTensorflow,
  wasm: loadWasm,
  cpu: loadCpu,
};

/**
 * Loads, registers and activates a backend; returns its name.
 * `preference`: 'auto' (default) | 'tensorflow' | 'wasm' | 'cpu'.
 * A named backend that cannot load throws BackendUnavailableError saying what
 * to install; 'auto' falls through the order and throws only if none loads.
 * Calling it again (same or another backend) is cheap: tfjs keeps
 * initialised backends, so tests can switch with tf.setBackend as well.
 */
export async function initBackend(preference: string = 'auto'): Promise<string> {
  const resolved = resolvePreference(preference);
  registerGradients();
  if (resolved !== 'auto') {
    await LOADERS[resolved]();
    return tf.getBackend();
  }
  const failures: string[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await LOADERS[name]();
      return tf.getBackend();
    } catch (e) {
      failures.push(errorText(e));
    }
  }
  throw new Error(`no tfjs backend could be loaded: ${failures.join(' | ')}`);
}

/** Name of the active backend ('tensorflow' | 'wasm' | 'cpu'), initialising tfjs's default if none is active yet. */
export function backendName(): string {
  return tf.getBackend();
}
