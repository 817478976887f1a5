import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The backend the nn tests run on: the project's engine on wasm (its extra kernels and gradients are
 * what training needs there). METADD_TEST_BACKEND=cpu selects tfjs' pure-JS backend instead, as a
 * correctness reference. Before src/engine/backend.ts existed the tests ran on cpu with tfjs' own
 * gradient registrations; that path stays as the fallback.
 */
export async function setupBackend(): Promise<string> {
  const backend = process.env.METADD_TEST_BACKEND === 'cpu' ? 'cpu' : 'wasm';
  // A variable specifier keeps tsc from requiring the module at compile time.
  const enginePath = '../src/engine/backend.js';
  if (existsSync(new URL(enginePath, import.meta.url))) {
    const engine = (await import(enginePath)) as { initBackend: (preference?: string) => Promise<string> };
    return engine.initBackend(backend);
  }
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
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
