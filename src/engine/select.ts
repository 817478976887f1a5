import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/**
 * The backend a spec will run on, decided without loading TensorFlow.js (planning must stay fast):
 * an explicit choice wins; 'auto' takes METADD_BACKEND, else the native bindings when installed,
 * else wasm. Workers check that the backend they load is this one.
 */
export function plannedBackend(preference: string = 'auto'): string {
  const pref = preference === 'auto' ? (process.env.METADD_BACKEND ?? 'auto') : preference;
  if (pref !== 'auto') return pref;
  if (installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node')) return 'tensorflow';
  return 'wasm';
}
