import * as tf from '@tensorflow/tfjs-core';

/**
 * Identity whose gradient is zero. The max subtracted for a stable log-softmax only needs to be a
 * constant: routing it through `max`'s gradient would add nothing but an `Equal` node that tfjs cannot
 * differentiate again (DC and MTT take gradients of gradients of these losses).
 */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/** log softmax over the last axis of [N, C] logits. */
export function logSoftmax(logits: tf.Tensor2D): tf.Tensor2D {
  const shifted = tf.sub(logits, stopGradient(tf.max(logits, 1, true)));
  return tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), 1, true)));
}

/** Mean cross-entropy of [N, C] logits against int32 class indices [N] (PyTorch CrossEntropyLoss). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const [n, c] = logits.shape;
  const onehot = tf.oneHot(labels, c);
  return tf.div(tf.neg(tf.sum(tf.mul(onehot, logSoftmax(logits)))), n) as tf.Scalar;
}

/**
 * Knowledge-distillation loss against soft targets: T^2 * mean_n sum_c p_T log(1 / q_T) with
 * q_T = softmax(logits / T) and p_T the targets sharpened or softened by the same temperature
 * (p_T proportional to p^(1/T), i.e. softmax(teacher logits / T) when p = softmax(teacher logits)).
 * This is KL(p_T || q_T) plus the entropy of p_T, a constant: same gradients, and the value stays
 * comparable to a hard-label cross-entropy. T^2 keeps gradient magnitudes independent of T (Hinton).
 */
export function softCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D, temperature = 1): tf.Scalar {
  const n = logits.shape[0];
  const t = temperature;
  const p = t === 1 ? targets : temperedTargets(targets, t);
  const logq = logSoftmax(t === 1 ? logits : (tf.div(logits, t) as tf.Tensor2D));
  return tf.mul(tf.div(tf.neg(tf.sum(tf.mul(p, logq))), n), t * t) as tf.Scalar;
}

/** p^(1/T), renormalised per row (computed in log space; zero probabilities stay zero). */
export function temperedTargets(probs: tf.Tensor2D, temperature: number): tf.Tensor2D {
  return tf.tidy(() => {
    const logp = tf.div(tf.log(tf.maximum(probs, 1e-30)), temperature) as tf.Tensor2D;
    const z = tf.where(tf.greater(probs, 0), logp, tf.fill(probs.shape, -Infinity)) as tf.Tensor2D;
    return tf.softmax(z);
  });
}

/**
 * Knowledge distillation from a teacher's logits on the same (augmented) batch:
 * T^2 * mean_n KL(softmax(teacher / T) || softmax(student / T)), i.e. PyTorch's
 * `KLDivLoss(reduction='batchmean')(log_softmax(student / T), softmax(teacher / T)) * T^2`.
 * SRe2L's relabel code leaves the T^2 out because it trains the student with AdamW, which is blind to
 * a constant loss scale; with SGD (our evaluation protocol) the gradients w.r.t. the logits shrink as
 * 1 / T without it, so we keep Hinton's T^2. The teacher side carries no gradient.
 */
export function kdLoss(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number): tf.Scalar {
  if (!(temperature > 0)) throw new Error(`kdLoss: temperature must be > 0, got ${temperature}`);
  const t = temperature;
  const n = studentLogits.shape[0];
  const logp = logSoftmax(stopGradient(tf.div(teacherLogits, t)) as tf.Tensor2D);
  const logq = logSoftmax(tf.div(studentLogits, t) as tf.Tensor2D);
  const kl = tf.sum(tf.mul(tf.exp(logp), tf.sub(logp, logq)));
  return tf.mul(tf.div(kl, n), t * t) as tf.Scalar;
}

/** Number of rows whose argmax equals the label. */
export function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')).dataSync()[0]);
}
