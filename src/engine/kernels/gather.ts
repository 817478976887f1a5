/**
 * GatherV2 on wasm as block copies on the backend's heap. The stock kernel walks the output one element
 * at a time through generic strides: about 40 ns per element here, so that DSA's resampling (a gather of
 * every pixel's bilinear taps, src/nn/sampler.ts) and the filter flip of every Conv2DBackpropInput
 * (kernels/conv2d_backprop_input.ts) spent milliseconds on what is a memcpy (docs/engine.md, "Gather").
 * A gather only moves bits, so the result is byte-identical to the stock kernel's; dtypes other than
 * the 4- and 1-byte ones go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel, replaceKernel } from '../registry.js';
import { heapByteOffset, wasmMemory, type WasmBackendInternals } from '../wasm-heap.js';

/** Slices shorter than this are copied element by element: copyWithin's call costs more than the loop. */
const BLOCK_COPY_MIN = 16;

const BYTES: Partial<Record<tf.DataType, 1 | 4>> = { float32: 4, int32: 4, bool: 1 };

const gatherV2Kernel: tf.KernelFunc = (args) => {
  const { inputs, attrs } = args;
  const backend = args.backend as unknown as WasmBackendInternals;
  const x = inputs.x;
  const indices = inputs.indices;
  if (x === undefined || indices === undefined) throw new Error("metadd engine: GatherV2 needs inputs 'x' and 'indices'");
  const bytes = BYTES[x.dtype];
  if (bytes === undefined) {
    const stock = originalKernel(tf.GatherV2, 'wasm');
    if (stock === undefined) throw new Error('metadd engine: no wasm GatherV2 kernel');
    return stock.kernelFunc(args);
  }
  const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const axisDim = x.shape[parsedAxis];
  const idx = Int32Array.from(backend.readSync(indices.dataId) as ArrayLike<number>);
  for (const i of idx) {
    if (i < 0 || i >= axisDim) throw new Error(`GatherV2: the index value ${i} is not in [0, ${axisDim - 1}]`);
  }
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, parsedAxis, batchDims);
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const perBatch = batchSize === 0 ? 0 : idx.length / batchSize;
  const out = backend.makeOutput(info.outputShape, x.dtype);
  if (tf.util.sizeFromShape(info.outputShape) === 0) return out;
  // Views after makeOutput, which may have grown (and so detached) the heap.
  const buffer = wasmMemory(backend).buffer;
  const heap = bytes === 4 ? new Int32Array(buffer) : new Uint8Array(buffer);
  const src0 = heapByteOffset(backend, x) / bytes;
  let dst = heapByteOffset(backend, out) / bytes;
  for (let b = 0; b < batchSize; b++) {
    for (let o = 0; o < outerSize; o++) {
      const row0 = src0 + (b * outerSize + o) * dimSize * sliceSize;
      for (let i = 0; i < perBatch; i++) {
        const src = row0 + idx[b * perBatch + i] * sliceSize;
        if (sliceSize >= BLOCK_COPY_MIN) {
          heap.copyWithin(dst, src, src + sliceSize);
        } else {
          for (let s = 0; s < sliceSize; s++) heap[dst + s] = heap[src + s];
        }
        dst += sliceSize;
      }
    }
  }
  return out;
};

export function registerGather(): void {
  replaceKernel({ kernelName: tf.GatherV2, backendName: 'wasm', kernelFunc: gatherV2Kernel });
}
