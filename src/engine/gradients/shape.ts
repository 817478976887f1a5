/**
 * Gradients of reductions and shape/indexing kernels, ported from tfjs-core
 * 4.22 (Apache-2.0) to the public API; see math.ts for why we register them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, one, zeroGrads, type NamedGradientMap } from './util.js';

type Grad = tf.GradConfig;

/**
 * dy (reduced over `axes`, kept as size-1 dims) spread back over x's shape, as tfjs-core does: a product
 * with ones, which stays differentiable in dy. The ones come from the Fill kernel: `tf.ones` fills a JS
 * array and copies it onto the backend, 50 ms for a [256, 32, 32, 32] map on wasm against 5 ms
 * (docs/engine.md). Multiplying by 1 is exact, so the bytes are the same.
 */
function spread(dy: tf.Tensor | tf.Tensor[], shape: number[], axes: number[]): tf.Tensor {
  return tf.mul(tf.reshape(one(dy), keepDimsShape(shape, axes)), tf.fill(shape, 1, 'float32'));
}

function keepDimsShape(shape: number[], axes: number[]): number[] {
  const s = shape.slice();
  for (const a of axes) s[a] = 1;
  return s;
}

/** d/dx of a max/min reduction: dy routed to the entries equal to the extreme. */
function extremumGrad(kernelName: string, reduce: (x: tf.Tensor, axes: number[]) => tf.Tensor): Grad {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const a = attrs as unknown as { reductionIndices?: number | number[]; axis?: number | number[] };
      const axes = tf.util.parseAxisParam(a.reductionIndices ?? a.axis ?? [], x.shape);
      const kept = keepDimsShape(x.shape, axes);
      return {
        x: () => {
          // The extreme is recomputed from x (not read from the saved output)
          // so that the mask's inputs are connected on the tape; the mask is
          // piecewise constant either way, and equal() has a zero gradient.
          const y = tf.reshape(reduce(x, axes), kept);
          const g = tf.reshape(one(dy), kept);
          return tf.mul(g, tf.cast(tf.equal(x, y), g.dtype));
        },
      };
    },
  };
}

export const shapeGradients: Grad[] = [
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape);
      return { x: () => spread(dy, x.shape, axes) };
    },
  },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.MeanAttrs).axis, x.shape);
      const n = axes.reduce((p, a) => p * x.shape[a], 1);
      return {
        x: () => tf.div(spread(dy, x.shape, axes), n),
      };
    },
  },
  extremumGrad('Max', (x, axes) => tf.max(x, axes)),
  extremumGrad('Min', (x, axes) => tf.min(x, axes)),
  {
    kernelName: 'Prod',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const { axis } = attrs as unknown as tf.ProdAttrs;
      const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_d, i) => i), x.shape);
      return {
        x: () => {
          // Product of all other entries = exclusive cumprod from both sides,
          // on the reduced axes flattened into one trailing axis.
          const perm = tf.backend_util.getAxesPermutation(axes, x.rank);
          const xp = perm === null ? x : tf.transpose(x, perm);
          const kept = xp.shape.slice(0, x.rank - axes.length);
          const r = axes.reduce((p, a) => p * x.shape[a], 1);
          const flat = tf.reshape(xp, [...kept, r]);
          const ax = kept.length;
          const others = tf.mul(tf.cumprod(flat, ax, true, false), tf.cumprod(flat, ax, true, true));
          const g = tf.reshape(one(dy), [...kept, 1]);
          const dxp = tf.reshape(tf.mul(g, others), xp.shape);
          return perm === null ? dxp : tf.transpose(dxp, tf.backend_util.getUndoAxesPermutation(perm));
        },
      };
    },
  },
  {
    kernelName: 'Cumsum',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const { axis, exclusive, reverse } = attrs as unknown as tf.CumsumAttrs;
      return {
        x: () => {
          const perm = tf.backend_util.getAxesPermutation([axis], x.rank);
          const out = tf.cumsum(one(dy), axis, exclusive, !reverse);
          return perm === null ? out : tf.transpose(out, perm);
        },
      };
    },
  },
  ...['ArgMax', 'ArgMin'].map((kernelName): Grad => ({ kernelName, inputsToSave: ['x'], gradFunc: zeroGrads(['x']) })),
  {
    kernelName: 'Reshape',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.reshape(one(dy), saved[0].shape) }),
  },
  {
    kernelName: 'ExpandDims',
    inputsToSave: ['input'],
    gradFunc: (dy, saved) => ({ input: () => tf.reshape(one(dy), saved[0].shape) }),
  },
  {
    kernelName: 'Transpose',
    gradFunc: (dy, _saved, attrs) => {
      const { perm } = attrs as unknown as tf.TransposeAttrs;
      return { x: () => tf.transpose(one(dy), tf.backend_util.getUndoAxesPermutation(perm)) };
    },
  },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const { begin, size } = attrs as unknown as tf.SliceAttrs;
      const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
      const paddings = x.shape.map((d, i): [number, number] => [b[i], d - b[i] - s[i]]);
      return { x: () => tf.pad(one(dy), paddings) };
    },
  },
  {
    kernelName: 'StridedSlice',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const a = attrs as unknown as tf.StridedSliceAttrs;
      return {
        x: () => {
          // Scatter dy back: indices of the selected elements via the same
          // strided slice applied to an iota over x.
          const iota = tf.reshape(tf.range(0, x.size, 1, 'int32'), x.shape);
          const picked = tf.stridedSlice(
            iota,
            a.begin,
            a.end,
            a.strides,
            a.beginMask,
            a.endMask,
            a.ellipsisMask,
            a.newAxisMask,
            a.shrinkAxisMask,
          );
          const flat = tf.scatterND(tf.reshape(picked, [-1, 1]), tf.reshape(one(dy), [-1]), [x.size]);
          return tf.reshape(flat, x.shape);
        },
      };
    },
  },
  ...['PadV2', 'MirrorPad'].map(
    (kernelName): Grad => ({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved, attrs) => {
        const { paddings } = attrs as unknown as tf.PadV2Attrs;
        return { x: () => tf.slice(one(dy), paddings.map((p) => p[0]), saved[0].shape) };
      },
    }),
  ),
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const { axis } = attrs as unknown as tf.ConcatAttrs;
      const ax = tf.util.parseAxisParam(axis, saved[0].shape)[0];
      const parts = tf.split(one(dy), saved.map((t) => t.shape[ax]), ax);
      const out: NamedGradientMap = {};
      parts.forEach((p, i) => {
        out[i] = () => p;
      });
      return out;
    },
  },
  {
    kernelName: 'Pack',
    saveAllInputs: true,
    gradFunc: (dy, _saved, attrs) => {
      const { axis } = attrs as unknown as tf.PackAttrs;
      const parts = tf.unstack(one(dy), axis);
      const out: NamedGradientMap = {};
      parts.forEach((p, i) => {
        out[i] = () => p;
      });
      return out;
    },
  },
  {
    kernelName: 'Unpack',
    gradFunc: (dy, _saved, attrs) => {
      const { axis } = attrs as unknown as tf.UnpackAttrs;
      return { value: () => tf.stack(dy as tf.Tensor[], axis) };
    },
  },
  {
    kernelName: 'SplitV',
    gradFunc: (dy, _saved, attrs) => {
      const { axis } = attrs as unknown as tf.SplitVAttrs;
      return { x: () => tf.concat(dy as tf.Tensor[], axis) };
    },
  },
  {
    kernelName: 'Reverse',
    gradFunc: (dy, _saved, attrs) => {
      const g = one(dy);
      const { dims } = attrs as unknown as tf.ReverseAttrs;
      return { x: () => tf.reverse(g, tf.util.parseAxisParam(dims, g.shape)) };
    },
  },
  {
    kernelName: 'Tile',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0];
      const { reps } = attrs as unknown as tf.TileAttrs;
      // View dy as [r0, d0, r1, d1, ...] and sum over the rep axes.
      const split: number[] = [];
      x.shape.forEach((d, i) => split.push(reps[i], d));
      const repAxes = x.shape.map((_d, i) => 2 * i);
      return { x: () => tf.reshape(tf.sum(tf.reshape(one(dy), split), repAxes), x.shape) };
    },
  },
  {
    kernelName: 'BroadcastTo',
    gradFunc: (dy, _saved, attrs) => {
      const { shape, inputShape } = attrs as unknown as tf.BroadCastToAttrs;
      const g = one(dy);
      const lead = shape.length - inputShape.length;
      const axes: number[] = [];
      shape.forEach((d, i) => {
        const inDim = i < lead ? 1 : inputShape[i - lead];
        if (inDim === 1 && d !== 1) axes.push(i);
      });
      return { x: () => tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, inputShape) };
    },
  },
  {
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved;
      const { axis, batchDims } = attrs as unknown as tf.GatherV2Attrs;
      if (batchDims !== undefined && batchDims !== 0) {
        throw new Error('metadd engine: gradient of gather with batchDims != 0 is not supported');
      }
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      return {
        x: () => {
          const outer = x.shape.slice(0, ax);
          const inner = x.shape.slice(ax + 1);
          const values = tf.reshape(one(dy), [...outer, indices.size, ...inner]);
          // Move the gathered axis first, segment-sum over it, move it back.
          const perm = [outer.length, ...outer.map((_d, i) => i), ...inner.map((_d, i) => outer.length + 1 + i)];
          const summed = tf.unsortedSegmentSum(tf.transpose(values, perm), tf.reshape(indices, [indices.size]), x.shape[ax]);
          return tf.transpose(summed, tf.backend_util.getUndoAxesPermutation(perm));
        },
        indices: () => tf.zerosLike(f32(indices)),
      };
    },
  },
  {
    kernelName: 'UnsortedSegmentSum',
    inputsToSave: ['segmentIds'],
    gradFunc: (dy, saved) => {
      const [ids] = saved;
      return {
        x: () => {
          const g = one(dy);
          const gathered = tf.gather(g, tf.maximum(ids, 0));
          const keep = tf.cast(tf.greaterEqual(ids, 0), 'float32');
          const keepShape = [...keep.shape, ...new Array<number>(gathered.rank - keep.rank).fill(1)];
          return tf.mul(gathered, tf.reshape(keep, keepShape));
        },
      };
    },
  },
  {
    kernelName: 'OneHot',
    inputsToSave: ['indices'],
    gradFunc: (_dy, saved) => ({ indices: () => tf.zeros(saved[0].shape, 'float32') }),
  },
  {
    kernelName: 'SpaceToBatchND',
    gradFunc: (dy, _saved, attrs) => {
      const { blockShape, paddings } = attrs as unknown as tf.SpaceToBatchNDAttrs;
      return { x: () => tf.batchToSpaceND(one(dy), blockShape, paddings) };
    },
  },
  {
    kernelName: 'BatchToSpaceND',
    gradFunc: (dy, _saved, attrs) => {
      const { blockShape, crops } = attrs as unknown as tf.BatchToSpaceNDAttrs;
      return { x: () => tf.spaceToBatchND(one(dy), blockShape, crops) };
    },
  },
];
