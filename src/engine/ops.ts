/**
 * Ops whose tfjs versions give wrong second derivatives because they are
 * built with tf.customGrad and save their OUTPUT (the saved tensor is
 * disconnected from the input on the tape, so differentiating the gradient
 * treats it as a constant): tf.logSoftmax, tf.losses.softmaxCrossEntropy and
 * tf.fused.* with a smooth activation. These versions are composed of
 * primitive kernels whose gradients (registered by this engine) are exact to
 * any order.
 */
import * as tf from '@tensorflow/tfjs-core';

/** log(softmax(x)) along `axis`, stable (subtracts the max, which has a zero-derivative mask). */
export function logSoftmax<T extends tf.Tensor>(logits: T, axis = -1): T {
  return tf.tidy(() => tf.sub(logits, tf.logSumExp(logits, axis, true))) as T;
}

/**
 * Mean over the batch of -sum(labels * logSoftmax(logits)) along the last
 * axis. `labels` are one-hot or soft targets with the logits' shape.
 */
export function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.neg(tf.sum(tf.mul(labels, logSoftmax(logits, -1)), -1))) as tf.Scalar);
}
