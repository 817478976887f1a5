/**
 * Conv2DBackpropFilter for the wasm backend, which has none: our SIMD kernel
 * (src/engine/simd/assembly/conv2d_backprop_filter.ts) on the backend's heap.
 *
 * dW[kh,kw,ci,co] = sum over b,oh,ow of x[b, oh*sh+kh-top, ow*sw+kw-left, ci] * dy[b,oh,ow,co].
 *
 * The reduction runs over B*OH*OW positions (65536 at ConvNet-3's layer 2 at
 * batch 256). Every formulation through tfjs's XNNPACK kernels repacked one
 * large operand per call, which cost as much as the multiplication; the kernel
 * packs cache-sized chunks of positions instead (docs/engine.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor } from '../registry.js';
import { runSimdKernel } from '../simd/module.js';
import { convGeometry, toNHWC, type PadAttr, type RoundingMode } from './conv_util.js';

/**
 * Positions per packed chunk. At ConvNet's wide layers (K = 9*128) a chunk's
 * patch panel is 295 KB, inside the 512 KB L2 of the machine it was tuned on;
 * 32 and 128 measured within 10% of it (docs/benchmarks.md).
 */
export const CHUNK_POSITIONS = 64;

/** dW for NHWC x and dy on the wasm backend. */
export function conv2dBackpropFilterNHWC(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: PadAttr,
  dimRoundingMode?: RoundingMode,
): tf.Tensor4D {
  const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode);
  if (dy.shape[0] !== g.batch || dy.shape[1] !== g.outH || dy.shape[2] !== g.outW || dy.shape[3] !== g.outC) {
    throw new Error(`metadd engine: Conv2DBackpropFilter dy shape [${dy.shape}] does not match [${[g.batch, g.outH, g.outW, g.outC]}]`);
  }
  return runSimdKernel(
    g,
    [x, dy],
    [...filterShape],
    (k) => k.conv2dBackpropFilterScratchBytes(CHUNK_POSITIONS),
    (k, [xAt, dyAt], out, scratch) => k.conv2dBackpropFilter(xAt, dyAt, out, scratch, CHUNK_POSITIONS, g.batch),
  ) as tf.Tensor4D;
}

const conv2dBackpropFilterKernel: tf.KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const x = asTensor<tf.Rank.R4>(inputs.x, 'x');
  const dy = asTensor<tf.Rank.R4>(inputs.dy, 'dy');
  // filterShape is [KH, KW, Ci, Co] in both data formats; only x and dy follow it.
  return tf.tidy(() =>
    conv2dBackpropFilterNHWC(
      toNHWC(x, a.dataFormat),
      toNHWC(dy, a.dataFormat),
      a.filterShape,
      a.strides,
      a.pad as PadAttr,
      a.dimRoundingMode,
    ),
  );
};

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterKernel,
};
