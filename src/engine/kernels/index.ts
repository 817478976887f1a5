import * as tf from '@tensorflow/tfjs-core';
import { replaceKernel } from '../registry.js';
import { conv2dBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { conv2dBackpropInputConfig } from './conv2d_backprop_input.js';
import { registerGather } from './gather.js';
import { registerIdentity } from './identity.js';
import { registerMatMulKernels } from './matmul.js';
import { registerPoolGradKernels } from './pool_grad.js';
import { registerReduceKernels } from './reduce.js';
import { registerResizeGrads } from './resize_grad.js';
import { registerUnsortedSegmentSum } from './unsorted_segment_sum.js';

/**
 * Registers our wasm kernels. Must run after @tensorflow/tfjs-backend-wasm
 * has been imported (its kernels are the originals the wrappers delegate to).
 * Idempotent: replaceKernel keeps the first original it saw.
 */
export function registerWasmKernels(): void {
  if (tf.getKernel(tf.Conv2D, 'wasm') === undefined) {
    throw new Error('metadd engine: @tensorflow/tfjs-backend-wasm must be imported before registering wasm kernels');
  }
  replaceKernel(conv2dBackpropFilterConfig);
  replaceKernel(conv2dBackpropInputConfig);
  registerMatMulKernels();
  registerPoolGradKernels();
  registerReduceKernels();
  registerUnsortedSegmentSum();
  registerIdentity();
  registerGather();
  registerResizeGrads('wasm');
}

/** Registers our cpu kernels (correctness fixes only). Idempotent. */
export function registerCpuKernels(): void {
  registerResizeGrads('cpu');
}
