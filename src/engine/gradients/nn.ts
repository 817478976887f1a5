/**
 * Gradients of the neural-network kernels: matmul, convolutions, pooling,
 * resizing, softmax, batch norm. Ported from tfjs-core 4.22 (Apache-2.0) where
 * tfjs has them, plus the ones it lacks and second-order training needs:
 * Conv2DBackpropFilter, AvgPoolGrad, MaxPoolGrad, ResizeBilinearGrad,
 * ResizeNearestNeighborGrad. The backprop kernels are linear in dy, so their
 * gradients are the forward ops (the adjoint of an adjoint); they are
 * piecewise constant (pooling, resizing) or linear (convolutions) in their
 * other input.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, one, unbroadcast, type NamedGradientMap } from './util.js';

type Grad = tf.GradConfig;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

const run = (name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor =>
  tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;

function backpropInput(
  inputShape: number[],
  dy: tf.Tensor,
  filter: tf.Tensor,
  a: { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: string },
): tf.Tensor {
  return run(
    'Conv2DBackpropInput',
    { dy, filter },
    { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat ?? 'NHWC', dimRoundingMode: a.dimRoundingMode, inputShape },
  );
}

function backpropFilter(
  x: tf.Tensor,
  dy: tf.Tensor,
  filterShape: number[],
  a: { strides: number | [number, number]; pad: Pad; dataFormat?: string; dimRoundingMode?: string },
): tf.Tensor {
  return run(
    'Conv2DBackpropFilter',
    { x, dy },
    { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat ?? 'NHWC', dimRoundingMode: a.dimRoundingMode, filterShape },
  );
}

const dataFormat = (df: string | undefined): 'NHWC' | 'NCHW' => (df === 'NCHW' ? 'NCHW' : 'NHWC');
const rounding = (m: string | undefined): 'floor' | 'round' | 'ceil' | undefined =>
  m === 'floor' || m === 'round' || m === 'ceil' ? m : undefined;

export const nnGradients: Grad[] = [
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = one(dy);
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
      // Broadcast batch dimensions are summed back by unbroadcast.
      const ga = !transposeA
        ? !transposeB
          ? () => tf.matMul(g, b, false, true)
          : () => tf.matMul(g, b, false, false)
        : !transposeB
          ? () => tf.matMul(b, g, false, true)
          : () => tf.matMul(b, g, true, true);
      const gb = !transposeA
        ? !transposeB
          ? () => tf.matMul(a, g, true, false)
          : () => tf.matMul(g, a, true, false)
        : !transposeB
          ? () => tf.matMul(a, g, false, false)
          : () => tf.matMul(g, a, true, true);
      const fit = (t: tf.Tensor, target: tf.Tensor): tf.Tensor => {
        if (tf.util.arraysEqual(t.shape, target.shape)) return t;
        const lead = t.rank - target.rank;
        const axes: number[] = [];
        for (let i = 0; i < t.rank - 2; i++) {
          const d = i < lead ? 1 : target.shape[i - lead];
          if (d === 1 && t.shape[i] !== 1) axes.push(i);
        }
        return tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, target.shape);
      };
      return { a: () => fit(ga(), a), b: () => fit(gb(), b) };
    },
  },
  {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const a = attrs as unknown as tf.Conv2DAttrs;
      const dil = a.dilations ?? 1;
      if (!(dil === 1 || (Array.isArray(dil) && dil.every((d) => d === 1)))) {
        throw new Error(`metadd engine: gradient of conv2d with dilations ${String(dil)} is not supported`);
      }
      const g = one(dy);
      return {
        x: () => backpropInput(x.shape, g, filter, a),
        filter: () => backpropFilter(x, g, filter.shape, a),
      };
    },
  },
  {
    kernelName: 'Conv2DBackpropInput',
    inputsToSave: ['dy', 'filter'],
    gradFunc: (ddx, saved, attrs) => {
      const [dy, filter] = saved;
      const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
      const g = one(ddx) as tf.Tensor4D;
      return {
        dy: () => tf.conv2d(g, filter as tf.Tensor4D, a.strides, a.pad, dataFormat(a.dataFormat), 1, rounding(a.dimRoundingMode)),
        filter: () => backpropFilter(g, dy, filter.shape, a),
      };
    },
  },
  {
    // dW = sum x * dy is bilinear: d/dx = conv2dTranspose(dy, dW_bar),
    // d/d(dy) = conv2d(x, dW_bar), with the forward conv's strides and padding.
    kernelName: 'Conv2DBackpropFilter',
    inputsToSave: ['x', 'dy'],
    gradFunc: (ddw, saved, attrs) => {
      const [x, dy] = saved;
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      const g = one(ddw) as tf.Tensor4D;
      return {
        x: () => backpropInput(x.shape, dy, g, a),
        dy: () => tf.conv2d(x as tf.Tensor4D, g, a.strides, a.pad, dataFormat(a.dataFormat), 1, rounding(a.dimRoundingMode)),
      };
    },
  },
  {
    kernelName: 'DepthwiseConv2dNative',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const a = attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
      const dilations = a.dilations ?? [1, 1];
      const g = one(dy);
      const common = { strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode, dilations };
      return {
        x: () => run('DepthwiseConv2dNativeBackpropInput', { dy: g, filter }, { ...common, inputShape: x.shape }),
        filter: () => run('DepthwiseConv2dNativeBackpropFilter', { x, dy: g }, { ...common, filterShape: filter.shape }),
      };
    },
  },
  {
    kernelName: 'AvgPool',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as unknown as tf.AvgPoolAttrs;
      return {
        x: () => run('AvgPoolGrad', { dy: one(dy), input: saved[0] }, { filterSize: a.filterSize, strides: a.strides, pad: a.pad }),
      };
    },
  },
  {
    // Linear in dy: its adjoint is the average pool itself.
    kernelName: 'AvgPoolGrad',
    inputsToSave: ['input'],
    gradFunc: (g, saved, attrs) => {
      const a = attrs as unknown as tf.AvgPoolGradAttrs;
      return {
        dy: () => tf.avgPool(one(g) as tf.Tensor4D, a.filterSize, a.strides, a.pad as 'valid' | 'same' | number),
        input: () => tf.zerosLike(f32(saved[0])),
      };
    },
  },
  {
    // The saved output only selects the argmax positions: piecewise constant,
    // so its being disconnected on the tape (see math.ts) does no harm here.
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, y] = saved;
      const a = attrs as unknown as tf.MaxPoolAttrs;
      return {
        x: () =>
          run('MaxPoolGrad', { dy: one(dy), input: x, output: y }, { filterSize: a.filterSize, strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode }),
      };
    },
  },
  {
    // Linear in dy: the adjoint picks, for each window, g at that window's
    // argmax (flat indices from maxPoolWithArgmax, batch included).
    kernelName: 'MaxPoolGrad',
    inputsToSave: ['dy', 'input', 'output'],
    gradFunc: (g, saved, attrs) => {
      const [dy, input, output] = saved;
      const a = attrs as unknown as tf.MaxPoolGradAttrs;
      return {
        dy: () => {
          if (typeof a.pad !== 'string' && typeof a.pad !== 'number') {
            throw new Error('metadd engine: second-order max pooling supports only valid/same/number padding');
          }
          // Shifted positive: argmax is shift-invariant, and wasm's
          // MaxPoolWithArgmax mishandles windows whose maximum is negative.
          const shifted = tf.add(tf.sub(input, tf.min(input)), 1) as tf.Tensor4D;
          const { indexes } = tf.maxPoolWithArgmax(shifted, a.filterSize, a.strides, a.pad, true);
          return tf.reshape(tf.gather(tf.reshape(one(g), [-1]), tf.reshape(indexes, [-1])), dy.shape);
        },
        input: () => tf.zerosLike(f32(input)),
        output: () => tf.zerosLike(f32(output)),
      };
    },
  },
  {
    kernelName: 'ResizeBilinear',
    inputsToSave: ['images'],
    gradFunc: (dy, saved, attrs) => ({
      images: () => run('ResizeBilinearGrad', { dy: one(dy), images: saved[0] }, attrs),
    }),
  },
  {
    kernelName: 'ResizeBilinearGrad',
    inputsToSave: ['images', 'dy'],
    gradFunc: (g, saved, attrs) => {
      const [images, dy] = saved;
      const a = attrs as unknown as tf.ResizeBilinearGradAttrs;
      return {
        dy: () => tf.image.resizeBilinear(one(g) as tf.Tensor4D, [dy.shape[1] as number, dy.shape[2] as number], a.alignCorners, a.halfPixelCenters),
        images: () => tf.zerosLike(f32(images)),
      };
    },
  },
  {
    kernelName: 'ResizeNearestNeighbor',
    inputsToSave: ['images'],
    gradFunc: (dy, saved, attrs) => ({
      images: () => run('ResizeNearestNeighborGrad', { dy: one(dy), images: saved[0] }, attrs),
    }),
  },
  {
    kernelName: 'ResizeNearestNeighborGrad',
    inputsToSave: ['images', 'dy'],
    gradFunc: (g, saved, attrs) => {
      const [images, dy] = saved;
      const a = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
      return {
        dy: () =>
          tf.image.resizeNearestNeighbor(one(g) as tf.Tensor4D, [dy.shape[1] as number, dy.shape[2] as number], a.alignCorners, a.halfPixelCenters),
        images: () => tf.zerosLike(f32(images)),
      };
    },
  },
  {
    // Recomputes softmax from the logits instead of reading the saved output.
    kernelName: 'Softmax',
    inputsToSave: ['logits'],
    gradFunc: (dy, saved, attrs) => {
      const { dim } = attrs as unknown as tf.SoftmaxAttrs;
      return {
        logits: () => {
          const y = tf.softmax(saved[0], dim);
          const dyy = tf.mul(one(dy), y);
          return tf.sub(dyy, tf.mul(tf.sum(dyy, [dim], true), y));
        },
      };
    },
  },
  {
    // tf.logSoftmax itself goes through customGrad (which we cannot fix; use
    // the engine's logSoftmax), but the kernel can be reached via runKernel.
    kernelName: 'LogSoftmax',
    inputsToSave: ['logits'],
    gradFunc: (dy, saved, attrs) => {
      const { axis } = attrs as unknown as tf.LogSoftmaxAttrs;
      return {
        logits: () => {
          const g = one(dy);
          return tf.sub(g, tf.mul(tf.sum(g, axis, true), tf.softmax(saved[0], axis)));
        },
      };
    },
  },
  {
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dy, saved, attrs) => {
      const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
      const [x, mean, variance, scale] = saved;
      const g = one(dy);
      const s = scale ?? tf.scalar(1);
      const inv = tf.rsqrt(tf.add(variance, varianceEpsilon));
      const xc = tf.sub(x, mean);
      const gs = tf.mul(g, s);
      const fit = (t: tf.Tensor, target: tf.Tensor): tf.Tensor => unbroadcast(t, target.shape, x.shape);
      const grads: NamedGradientMap = {
        x: () => tf.mul(g, tf.mul(inv, s)),
        mean: () => fit(tf.neg(tf.mul(inv, gs)), mean),
        variance: () => fit(tf.mul(tf.mul(tf.mul(tf.pow(inv, 3), -0.5), xc), gs), variance),
        offset: () => fit(g, mean),
      };
      if (scale !== undefined) grads.scale = () => fit(tf.mul(g, tf.mul(xc, inv)), scale);
      return grads;
    },
  },
];
