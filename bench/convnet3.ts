/**
 * A self-contained ConvNet-3 (REFERENCE section 2) for the kernel benchmarks:
 * 3 x [conv 3x3 (+bias) -> instance norm as per-channel moments (affine) ->
 * ReLU -> 2x2 average pool], then a linear classifier. The first conv pads 3
 * on 28x28 inputs so the net sees 32x32. It is deliberately independent of
 * src/nn so the engine can be measured on its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { softmaxCrossEntropy } from '../src/engine/index.js';

export interface ConvNet3 {
  params: tf.Variable[];
  forward(x: tf.Tensor4D): tf.Tensor2D;
}

export interface ConvNet3Options {
  width: number;
  depth?: number;
  imageSize?: number;
  channels?: number;
  classes?: number;
  seed?: number;
}

const EPS = 1e-5;

export function instanceNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [1, 2], true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, EPS))), gamma), beta);
}

export function makeConvNet3(opts: ConvNet3Options): ConvNet3 {
  const depth = opts.depth ?? 3;
  const im = opts.imageSize ?? 28;
  const channels = opts.channels ?? 1;
  const classes = opts.classes ?? 10;
  const seed = opts.seed ?? 1;
  const convs: Array<{ w: tf.Variable; b: tf.Variable; g: tf.Variable; beta: tf.Variable; pad: number }> = [];
  let c = channels;
  let size = im;
  for (let d = 0; d < depth; d++) {
    const pad = d === 0 && im === 28 ? 3 : 1;
    const fanIn = 9 * c;
    convs.push({
      w: tf.variable(tf.randomNormal([3, 3, c, opts.width], 0, Math.sqrt(2 / fanIn), 'float32', seed + d)),
      b: tf.variable(tf.zeros([opts.width])),
      g: tf.variable(tf.ones([opts.width])),
      beta: tf.variable(tf.zeros([opts.width])),
      pad,
    });
    size = Math.floor((size + 2 * pad - 2) / 2);
    c = opts.width;
  }
  const feat = c * size * size;
  const fcW = tf.variable(tf.randomNormal([feat, classes], 0, Math.sqrt(1 / feat), 'float32', seed + 100));
  const fcB = tf.variable(tf.zeros([classes]));
  const params = [...convs.flatMap((l) => [l.w, l.b, l.g, l.beta]), fcW, fcB];
  return {
    params,
    forward(x: tf.Tensor4D): tf.Tensor2D {
      let h: tf.Tensor4D = x;
      for (const l of convs) {
        const p = l.pad;
        h = tf.add(tf.conv2d(h, l.w as tf.Tensor4D, 1, [[0, 0], [p, p], [p, p], [0, 0]]), l.b);
        h = tf.relu(instanceNorm(h, l.g, l.beta));
        h = tf.avgPool(h, 2, 2, 'valid');
      }
      return tf.add(tf.matMul(tf.reshape(h, [h.shape[0], -1]), fcW), fcB);
    },
  };
}

/** One SGD step (forward, backward, update); returns the loss. */
export function trainStep(net: ConvNet3, x: tf.Tensor4D, labels: tf.Tensor2D, lr: number): number {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(labels, net.forward(x)), net.params);
    for (const p of net.params) p.assign(tf.sub(p, tf.mul(grads[p.name], lr)));
    return value.dataSync()[0];
  });
}
