import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The backend the nn tests run on: the project's engine on wasm (its extra kernels are what training
 * needs there) once src/engine/backend.ts exists, otherwise tfjs' pure-JS cpu backend.
 * METADD_TEST_BACKEND=cpu forces the cpu backend (a correctness reference).
 */
export async function setupBackend(): Promise<string> {
  if (process.env.METADD_TEST_BACKEND !== 'cpu') {
    // A variable specifier keeps tsc from requiring the module while the engine does not exist yet.
    const enginePath = '../src/engine/backend.js';
    if (existsSync(new URL(enginePath, import.meta.url))) {
      const engine = (await import(enginePath)) as { initBackend: (preference?: string) => Promise<string> };
      return engine.initBackend('wasm');
    }
  }
  await import('@tensorflow/tfjs-backend-cpu');
  await tf.setBackend('cpu');
  return 'cpu';
}

/** Max |a - b| over two equally shaped tensors or arrays. */
export function maxAbsDiff(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>): number {
  const x = a instanceof tf.Tensor ? a.dataSync() : a;
  const y = b instanceof tf.Tensor ? b.dataSync() : b;
  if (x.length !== y.length) throw new Error(`length ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
