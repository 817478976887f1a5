/** Small helpers shared by the gradient definitions. */
import * as tf from '@tensorflow/tfjs-core';

/** Gradient closures by input name (tfjs-core does not export this type). */
export type NamedGradientMap = Record<string, () => tf.Tensor>;

/** dy summed over the axes along which `shape` was broadcast to `outShape`, reshaped to `shape`. */
export function unbroadcast(dy: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, outShape);
  const r = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(r, shape);
}

export function broadcastShape(a: tf.Tensor, b: tf.Tensor): number[] {
  return tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
}

export function f32(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

/** dy as a single tensor (all ops here have one output unless noted). */
export function one(dy: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(dy) ? dy[0] : dy;
}

/** Gradient map giving zeros shaped like each named saved input. */
export function zeroGrads(names: string[]): (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => NamedGradientMap {
  return (_dy, saved) => {
    const out: NamedGradientMap = {};
    names.forEach((name, i) => {
      out[name] = () => tf.zerosLike(f32(saved[i]));
    });
    return out;
  };
}
