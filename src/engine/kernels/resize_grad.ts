/**
 * ResizeBilinearGrad / ResizeNearestNeighborGrad that honour halfPixelCenters.
 *
 * tfjs 4.22's cpu and wasm gradient kernels ignore halfPixelCenters, so the
 * gradient of tf.image.resizeBilinear(x, size, false, true) (PyTorch's
 * align_corners=False convention, the natural choice for CAM upsampling) is
 * not the adjoint of the forward: <R u, v> - <u, R^T v> came out 7.8 for a
 * 4x4 -> 9x9 resize with O(1) random u, v (9.7 for nearest neighbour). Both
 * resizes are separable, out[b,i,j,c] = sum_{h,w} Ry[i,h] Rx[j,w] img[b,h,w,c],
 * with Ry/Rx built here from the forward kernels' own index arithmetic, so
 * the gradient is two small matmuls with Ry^T and Rx^T. The stock kernels
 * are wrong for non-square images too (bilinear: the gradient comes back with
 * height and width swapped, [2,5,4,3] for a [2,4,5,3] input; nearest: not the
 * adjoint), so these replace them for every setting, on cpu and wasm.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, replaceKernel } from '../registry.js';

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

/** [outSize, inSize] 0/1 selection, exactly as tfjs's forward resizeNearestNeighbor picks rows. */
export function nearestWeights(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Float32Array {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const m = new Float32Array(outSize * inSize);
  for (let r = 0; r < outSize; r++) {
    const src = halfPixelCenters ? ratio * (r + 0.5) : ratio * r;
    let k = Math.min(inSize - 1, alignCorners ? Math.round(src) : Math.floor(src));
    if (halfPixelCenters) k = Math.max(0, k);
    m[r * inSize + k] = 1;
  }
  return m;
}

type Weights = typeof bilinearWeights;

/** dimg = Ry^T dy Rx, contracted one spatial axis at a time with 2-D matmuls. */
export function separableResizeGrad(
  weights: Weights,
  dy: tf.Tensor4D,
  inH: number,
  inW: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, oh, ow, c] = dy.shape;
    const ry = tf.tensor2d(weights(inH, oh, alignCorners, halfPixelCenters), [oh, inH]);
    const rx = tf.tensor2d(weights(inW, ow, alignCorners, halfPixelCenters), [ow, inW]);
    // Rows: [OH, B*OW*C] -> [H, B*OW*C].
    const rowsFirst = tf.reshape(tf.transpose(dy, [1, 0, 2, 3]), [oh, b * ow * c]);
    const t = tf.reshape(tf.matMul(ry, rowsFirst, true, false), [inH, b, ow, c]);
    // Columns: [OW, B*H*C] -> [W, B*H*C].
    const colsFirst = tf.reshape(tf.transpose(t, [2, 1, 0, 3]), [ow, b * inH * c]);
    const u = tf.reshape(tf.matMul(rx, colsFirst, true, false), [inW, b, inH, c]);
    return tf.transpose(u, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

function kernelFor(weights: Weights): tf.KernelFunc {
  return (args) => {
    const a = args.attrs as unknown as tf.ResizeBilinearGradAttrs;
    const images = asTensor<tf.Rank.R4>(args.inputs.images, 'images');
    const dy = asTensor<tf.Rank.R4>(args.inputs.dy, 'dy');
    return separableResizeGrad(weights, dy, images.shape[1], images.shape[2], a.alignCorners, a.halfPixelCenters);
  };
}

export function registerResizeGrads(backendName: 'cpu' | 'wasm'): void {
  const pairs: Array<[string, Weights]> = [
    [tf.ResizeBilinearGrad, bilinearWeights],
    [tf.ResizeNearestNeighborGrad, nearestWeights],
  ];
  for (const [kernelName, weights] of pairs) {
    if (tf.getKernel(kernelName, backendName) === undefined) continue;
    replaceKernel({ kernelName, backendName, kernelFunc: kernelFor(weights) });
  }
}
