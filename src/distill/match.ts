import * as tf from '@tensorflow/tfjs-core';

/**
 * Column norms sqrt(sum_i x[i, j]^2) whose gradient is 0 (not NaN) for an all-zero column, like
 * PyTorch's `torch.norm` backward. A synthetic gradient column is exactly zero whenever a filter sees
 * only dead ReLUs, and sqrt's gradient at 0 would turn the whole image update into NaN.
 */
const columnNorm: (x: tf.Tensor2D) => tf.Tensor1D = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const xt = args[0] as tf.Tensor2D;
  const save = args[1] as tf.GradSaveFunc;
  const norm = tf.sqrt(tf.sum(tf.square(xt), 0)) as tf.Tensor1D;
  save([xt, norm]);
  return {
    value: norm,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.divNoNan(saved[0], saved[1])),
  };
}) as unknown as (x: tf.Tensor2D) => tf.Tensor1D;

/**
 * The gradient-matching distance "ours" of Dataset Condensation (Zhao et al., ICLR 2021): for each
 * parameter tensor with at least two dimensions, the sum over its output units of 1 - cos between the
 * synthetic and real gradients of that unit; one-dimensional parameters (biases, norm affines) are
 * ignored. Parameter layouts here put the output unit on the last axis (conv [kh, kw, in, out], linear
 * [in, out], layer norm [h, w, c]), so a unit's vector is a column of the [-1, out] reshape.
 */
export function matchDistance(gSyn: tf.Tensor[], gReal: tf.Tensor[]): tf.Scalar {
  if (gSyn.length !== gReal.length) throw new Error(`matchDistance: ${gSyn.length} synthetic vs ${gReal.length} real gradients`);
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    for (let i = 0; i < gSyn.length; i++) {
      const s = gSyn[i];
      const r = gReal[i];
      if (s.shape.join() !== r.shape.join()) throw new Error(`matchDistance: shape [${s.shape}] vs [${r.shape}] at ${i}`);
      if (s.rank < 2) continue;
      const out = s.shape[s.rank - 1];
      const s2 = tf.reshape(s, [-1, out]) as tf.Tensor2D;
      const r2 = tf.reshape(r, [-1, out]) as tf.Tensor2D;
      const dot = tf.sum(tf.mul(s2, r2), 0);
      const denom = tf.add(tf.mul(columnNorm(s2), columnNorm(r2)), 1e-6);
      total = tf.add(total, tf.sum(tf.sub(1, tf.div(dot, denom))));
    }
    return total;
  });
}
