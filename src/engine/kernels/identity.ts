/**
 * Identity on wasm without a copy. The engine clones every tensor a gradient
 * saves (inputs and outputs) through the Identity kernel; the stock wasm
 * kernel copies the data, the cpu one shares it. With ConvNet-3 at batch 64
 * that was 12 copies of 32 MB per step (~100 ms and that much extra heap,
 * which at batch 256 exhausted the 4 GB wasm heap). Tensors are immutable
 * (Variable.assign swaps the data id, it never writes in place), so sharing
 * the data id with a reference count, as wasm's own Reshape does, is safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel, replaceKernel } from '../registry.js';

interface RefCountingBackend {
  incRef(dataId: object): void;
}

const identityKernel: tf.KernelFunc = (args) => {
  const x = args.inputs.x;
  if (x === undefined) throw new Error("metadd engine: Identity needs input 'x'");
  if (x.dtype === 'string') {
    const orig = originalKernel(tf.Identity, 'wasm');
    if (orig === undefined) throw new Error('metadd engine: no wasm Identity kernel');
    return orig.kernelFunc(args);
  }
  (args.backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

export function registerIdentity(): void {
  replaceKernel({ kernelName: tf.Identity, backendName: 'wasm', kernelFunc: identityKernel });
}
