/**
 * ResizeBilinearGrad that honours halfPixelCenters.
 *
 * tfjs 4.22's cpu and wasm ResizeBilinearGrad ignore halfPixelCenters, so the
 * gradient of tf.image.resizeBilinear(x, size, false, true) (PyTorch's
 * align_corners=False convention, the natural choice for CAM upsampling) is
 * not the adjoint of the forward: <R u, v> - <u, R^T v> came out 7.8 for a
 * 4x4 -> 9x9 resize with O(1) random u, v. Bilinear resizing is separable,
 * out[b,i,j,c] = sum_{h,w} Ry[i,h] Rx[j,w] img[b,h,w,c], with Ry/Rx built
 * here from the forward kernel's own index arithmetic, so the gradient is two
 * small matmuls with Ry^T and Rx^T. Registered for cpu and wasm; other
 * settings use the stock kernels (their adjoint identity holds).
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, originalKernel, replaceKernel } from '../registry.js';

/** [outSize, inSize] interpolation weights, exactly as tfjs's forward resizeBilinear computes them. */
export function bilinearWeights(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Float32Array {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const m = new Float32Array(outSize * inSize);
  for (let r = 0; r < outSize; r++) {
    const src = halfPixelCenters ? ratio * (r + 0.5) - 0.5 : ratio * r;
    const lo = Math.max(0, Math.floor(src));
    const frac = src - lo;
    const hi = Math.min(inSize - 1, Math.ceil(src));
    m[r * inSize + lo] += 1 - frac;
    m[r * inSize + hi] += frac;
  }
  return m;
}

/** dimg = Ry^T dy Rx, contracted one spatial axis at a time with 2-D matmuls. */
export function resizeBilinearGradImpl(dy: tf.Tensor4D, inH: number, inW: number, alignCorners: boolean, halfPixelCenters: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, oh, ow, c] = dy.shape;
    const ry = tf.tensor2d(bilinearWeights(inH, oh, alignCorners, halfPixelCenters), [oh, inH]);
    const rx = tf.tensor2d(bilinearWeights(inW, ow, alignCorners, halfPixelCenters), [ow, inW]);
    // Rows: [OH, B*OW*C] -> [H, B*OW*C].
    const rowsFirst = tf.reshape(tf.transpose(dy, [1, 0, 2, 3]), [oh, b * ow * c]);
    const t = tf.reshape(tf.matMul(ry, rowsFirst, true, false), [inH, b, ow, c]);
    // Columns: [OW, B*H*C] -> [W, B*H*C].
    const colsFirst = tf.reshape(tf.transpose(t, [2, 1, 0, 3]), [ow, b * inH * c]);
    const u = tf.reshape(tf.matMul(rx, colsFirst, true, false), [inW, b, inH, c]);
    return tf.transpose(u, [1, 2, 0, 3]);
  });
}

function kernelFor(backendName: string): tf.KernelFunc {
  return (args) => {
    const a = args.attrs as unknown as tf.ResizeBilinearGradAttrs;
    const images = asTensor<tf.Rank.R4>(args.inputs.images, 'images');
    const dy = asTensor<tf.Rank.R4>(args.inputs.dy, 'dy');
    if (!a.halfPixelCenters) {
      const orig = originalKernel(tf.ResizeBilinearGrad, backendName);
      if (orig === undefined) throw new Error(`metadd engine: no ${backendName} ResizeBilinearGrad`);
      return orig.kernelFunc(args);
    }
    return resizeBilinearGradImpl(dy, images.shape[1], images.shape[2], a.alignCorners, a.halfPixelCenters);
  };
}

export function registerResizeBilinearGrad(backendName: 'cpu' | 'wasm'): void {
  if (tf.getKernel(tf.ResizeBilinearGrad, backendName) === undefined && originalKernel(tf.ResizeBilinearGrad, backendName) === undefined) return;
  replaceKernel({ kernelName: tf.ResizeBilinearGrad, backendName, kernelFunc: kernelFor(backendName) });
}
