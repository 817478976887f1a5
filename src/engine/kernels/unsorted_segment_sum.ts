/**
 * UnsortedSegmentSum for wasm (missing there; it is the gradient of gather).
 * Data-dependent scatter with no XNNPACK counterpart: computed on the host in
 * float64 and written back. Used for label/embedding gathers, never on large
 * activations, so the copy does not matter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, replaceKernel } from '../registry.js';

const unsortedSegmentSumKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const x = asTensor(inputs.x, 'x');
  const ids = asTensor(inputs.segmentIds, 'segmentIds');
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const inner = ids.size === 0 ? 0 : x.size / ids.size;
  const xs = x.dataSync();
  const is = ids.dataSync();
  const acc = new Float64Array(numSegments * inner);
  for (let i = 0; i < is.length; i++) {
    const s = is[i];
    if (s < 0 || s >= numSegments) continue; // TF drops out-of-range ids
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += xs[src + j];
  }
  const outShape = [numSegments, ...x.shape.slice(ids.rank)];
  return x.dtype === 'int32' ? tf.tensor(Int32Array.from(acc), outShape, 'int32') : tf.tensor(Float32Array.from(acc), outShape, 'float32');
};

export function registerUnsortedSegmentSum(): void {
  replaceKernel({ kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumKernel });
}
