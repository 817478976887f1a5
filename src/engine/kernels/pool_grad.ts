/**
 * Faster AvgPoolGrad / MaxPoolGrad on wasm for non-overlapping windows
 * (filter == stride, no padding), the pooling every net in our zoo uses, and a
 * correct MaxPoolGrad for padded pooling (the stock one drops border terms).
 * The stock wasm kernels are scalar loops: for dy [256,16,16,128] (2x2 pool of
 * a [256,32,32,128] map) AvgPoolGrad took 526-1363 ms and MaxPoolGrad 1112 ms;
 * written as broadcasts over a [B, OH, fh, OW, fw, C] view it is ~15 ms
 * (avg) and a few elementwise passes (max). Other geometries use the stock
 * kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, originalKernel, replaceKernel } from '../registry.js';

interface Tiling {
  b: number;
  oh: number;
  ow: number;
  c: number;
  fh: number;
  fw: number;
  /** rows/cols of x beyond oh*fh / ow*fw, never read by a 'valid' pool. */
  extraH: number;
  extraW: number;
}

/** The tiling when the pool's windows partition (a prefix of) the input; else undefined. */
function tiling(xShape: number[], attrs: tf.AvgPoolGradAttrs | tf.MaxPoolGradAttrs): Tiling | undefined {
  if (xShape.length !== 4) return undefined;
  const info = tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    'dimRoundingMode' in attrs ? attrs.dimRoundingMode : undefined,
  );
  const p = info.padInfo;
  if (p.top !== 0 || p.left !== 0 || p.bottom !== 0 || p.right !== 0) return undefined;
  if (info.filterHeight !== info.strideHeight || info.filterWidth !== info.strideWidth) return undefined;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  const extraH = info.inHeight - info.outHeight * info.filterHeight;
  const extraW = info.inWidth - info.outWidth * info.filterWidth;
  if (extraH < 0 || extraW < 0) return undefined;
  return {
    b: info.batchSize,
    oh: info.outHeight,
    ow: info.outWidth,
    c: info.inChannels,
    fh: info.filterHeight,
    fw: info.filterWidth,
    extraH,
    extraW,
  };
}

function sixD(t: tf.Tensor, g: Tiling, window: boolean): tf.Tensor {
  return tf.reshape(t, window ? [g.b, g.oh, g.fh, g.ow, g.fw, g.c] : [g.b, g.oh, 1, g.ow, 1, g.c]);
}

function backToImage(t6: tf.Tensor, g: Tiling): tf.Tensor4D {
  const img = tf.reshape(t6, [g.b, g.oh * g.fh, g.ow * g.fw, g.c]) as tf.Tensor4D;
  if (g.extraH === 0 && g.extraW === 0) return img;
  return tf.pad(img, [[0, 0], [0, g.extraH], [0, g.extraW], [0, 0]]);
}

/** The part of x that the windows cover, as [B, OH, fh, OW, fw, C]. */
function windows(x: tf.Tensor4D, g: Tiling): tf.Tensor {
  const covered =
    g.extraH === 0 && g.extraW === 0 ? x : tf.slice(x, [0, 0, 0, 0], [g.b, g.oh * g.fh, g.ow * g.fw, g.c]);
  return sixD(covered, g, true);
}

const avgPoolGradKernel: tf.KernelFunc = (args) => {
  const attrs = args.attrs as unknown as tf.AvgPoolGradAttrs;
  const dy = asTensor(args.inputs.dy, 'dy');
  const input = asTensor(args.inputs.input, 'input');
  const g = tiling(input.shape, attrs);
  if (g === undefined || dy.dtype !== 'float32') return delegate(tf.AvgPoolGrad, args);
  return tf.tidy(() => {
    const weight = tf.fill([1, 1, g.fh, 1, g.fw, 1], 1 / (g.fh * g.fw));
    return backToImage(tf.mul(sixD(dy, g, false), weight), g);
  });
};

/**
 * Gradient goes to the first maximum of each window in row-major window order,
 * as in tfjs's cpu kernel. Comparisons and cumsum are slow on wasm (equal on a
 * [256,16,2,16,2,128] view: 0.4 s same-shape, 7.4 s broadcast; cumsum 0.37 s),
 * so this uses only XNNPACK-backed arithmetic and step():
 *   isMax_p = 1 - step(max - x_p)                (x_p <= max, so exact)
 *   s       = sum_p isMax_p * 2^(P-1-p)           (P = fh*fw, exact in float32 for P <= 24)
 *   first_p = isMax_p * step(2^(P-p) - s)
 * The first maximum p* has s <= 2^(P-p*) - 1 (only lower bits follow), every
 * later maximum p has s >= 2^(P-1-p*) + 2^(P-1-p) >= 2^(P-p) + 1. The margin
 * is at least 1 either way, so the rounding in avgPool's sum/n*n is harmless.
 */
const maxPoolGradKernel: tf.KernelFunc = (args) => {
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const dy = asTensor(args.inputs.dy, 'dy');
  const input = asTensor<tf.Rank.R4>(args.inputs.input, 'input');
  const output = asTensor(args.inputs.output, 'output');
  if (dy.dtype !== 'float32') return delegate(tf.MaxPoolGrad, args);
  const info = tf.backend_util.computePool2DInfo(input.shape, attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const p = info.padInfo;
  if (p.top > 0 || p.bottom > 0 || p.left > 0 || p.right > 0) {
    // Max pooling with padding is valid pooling of the input padded with a
    // value below all of it (every window holds at least one real entry): do
    // that and crop, so only the valid-padding paths below are needed. Finite
    // rather than -inf so the argmax path can shift values (see below).
    return tf.tidy(() => {
      const below = tf.min(input).dataSync()[0] - 1;
      const xp = tf.pad(input, [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]], below);
      const gp = tf.engine().runKernel(
        tf.MaxPoolGrad,
        { dy, input: xp, output },
        { filterSize: attrs.filterSize, strides: attrs.strides, pad: 'valid' } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor4D;
      return tf.slice(gp, [0, p.top, p.left, 0], input.shape);
    });
  }
  const g = tiling(input.shape, attrs);
  if (g === undefined || g.fh * g.fw > 24) {
    // Overlapping windows. The stock wasm MaxPoolGrad (and MaxPoolWithArgmax)
    // drop windows whose maximum is negative (a 3x3 stride-1 pool of a 4x4
    // map lost 2 of its 16 gradient units), as if the running max started at
    // 0. So: shift the input positive (argmax is shift-invariant), take
    // maxPoolWithArgmax, and scatter dy to those positions.
    return tf.tidy(() => {
      const { indexes } = tf.maxPoolWithArgmax(positiveShift(input), attrs.filterSize, attrs.strides, 'valid', true);
      const flat = tf.scatterND(tf.reshape(indexes, [-1, 1]), tf.reshape(dy, [-1]), [input.size]);
      return tf.reshape(flat, input.shape);
    });
  }
  return tf.tidy(() => {
    const n = g.fh * g.fw;
    const bits = tf.tensor(
      Array.from({ length: n }, (_, i) => 2 ** (n - 1 - i)),
      [1, 1, g.fh, 1, g.fw, 1],
    );
    const isMax = tf.sub(1, tf.step(tf.sub(sixD(output, g, false), windows(input, g))));
    const weighted = tf.reshape(tf.mul(isMax, bits), [g.b, g.oh * g.fh, g.ow * g.fw, g.c]);
    const s = tf.mul(tf.avgPool(weighted as tf.Tensor4D, [g.fh, g.fw], [g.fh, g.fw], 'valid'), n);
    const first = tf.mul(isMax, tf.step(tf.sub(tf.mul(bits, 2), sixD(s, g, false))));
    return backToImage(tf.mul(first, sixD(dy, g, false)), g);
  });
};

/** x - min(x) + 1: all entries >= 1, same argmax in every window. */
export function positiveShift<T extends tf.Tensor>(x: T): T {
  return tf.add(tf.sub(x, tf.min(x)), 1) as T;
}

function delegate(kernelName: string, args: Parameters<tf.KernelFunc>[0]): ReturnType<tf.KernelFunc> {
  const orig = originalKernel(kernelName, 'wasm');
  if (orig === undefined) throw new Error(`metadd engine: no wasm kernel ${kernelName} to fall back to`);
  return orig.kernelFunc(args);
}

export function registerPoolGradKernels(): void {
  replaceKernel({ kernelName: tf.AvgPoolGrad, backendName: 'wasm', kernelFunc: avgPoolGradKernel });
  replaceKernel({ kernelName: tf.MaxPoolGrad, backendName: 'wasm', kernelFunc: maxPoolGradKernel });
}
