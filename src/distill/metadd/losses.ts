import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '../../nn/losses.js';

/**
 * The MetaDD loss terms (docs/metadd.md). Both are averages over the images of the set (and, for
 * L_var, over pixels), so their scale does not grow with IPC or the number of classes.
 */

/**
 * L_var: the variance across the M networks of their normalised CAMs ([N, H, W] each), averaged over
 * pixels and images. Population variance (divide by M): zero exactly when all maps agree.
 */
export function camVarianceLoss(cams: tf.Tensor3D[]): tf.Scalar {
  if (cams.length < 2) return tf.tidy(() => tf.mul(tf.sum(cams[0] ?? tf.scalar(0)), 0) as tf.Scalar);
  return tf.tidy(() => {
    const stacked = tf.stack(cams);
    const mean = tf.mean(stacked, 0);
    return tf.mean(tf.mean(tf.square(tf.sub(stacked, mean)), 0)) as tf.Scalar;
  });
}

/**
 * L_pos, our extension (the paper names a positive term but never defines it; docs/metadd.md):
 * 1 - sum_p min_m c^m(p) / (sum_p max_m c^m(p) + eps) per image, averaged over images. The ratio is the
 * fuzzy intersection over union of the M normalised CAMs, the continuous form of the meta-feature ratio
 * (|pixels all CAMs >= tau| / |pixels any CAM >= tau|): it rewards the region every network uses,
 * which L_var does not (L_var also falls when the networks' regions merely even out).
 */
export function metaFeatureLoss(cams: tf.Tensor3D[], eps = 1e-6): tf.Scalar {
  if (cams.length === 0) throw new Error('metaFeatureLoss: no networks');
  return tf.tidy(() => {
    const stacked = tf.stack(cams); // [M, N, H, W]
    const inter = tf.sum(tf.min(stacked, 0), [1, 2]); // [N]
    const union = tf.sum(tf.max(stacked, 0), [1, 2]);
    return tf.sub(1, tf.mean(tf.div(inter, tf.add(union, eps)))) as tf.Scalar;
  });
}

/** log softmax over the classes; the subtracted max is a constant (no Equal node in the gradient). */
function logSoftmax(logits: tf.Tensor2D): tf.Tensor2D {
  const shifted = tf.sub(logits, stopGradient(tf.max(logits, 1, true)));
  return tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), 1, true)));
}

export interface AiTerms {
  /** (1/M) sum_m [CE_m + KL_m]. */
  total: tf.Scalar;
  /** (1/M) sum_m CE(f_m(x), y), mean over images. */
  ce: tf.Scalar;
  /** (1/M) sum_m KL(p_bar || p_m), mean over images. */
  kl: tf.Scalar;
}

/**
 * L_ai = (1/M) sum_m [ CE(f_m(x), y) + KL(p_bar(x) || p_m(x)) ] with p_bar the mean of the M softmax
 * outputs, averaged over images. p_bar is not detached: the gradient also moves the consensus.
 * log p_bar is computed as a log-mean-exp of the log-probabilities, so it stays finite when a
 * probability underflows.
 */
export function architectureInvariantLoss(logits: tf.Tensor2D[], labels: tf.Tensor1D): AiTerms {
  const m = logits.length;
  if (m === 0) throw new Error('architectureInvariantLoss: no networks');
  const [ce, kl] = tf.tidy(() => {
    const [, classes] = logits[0].shape;
    const onehot = tf.oneHot(labels, classes);
    const logp = tf.stack(logits.map(logSoftmax)) as tf.Tensor3D; // [M, N, C]
    const ceAll = tf.mean(tf.neg(tf.sum(tf.mul(onehot, logp), 2))); // mean over networks and images
    const shift = stopGradient(tf.max(logp, 0, true));
    const logBar = tf.add(tf.squeeze(shift, [0]), tf.log(tf.mean(tf.exp(tf.sub(logp, shift)), 0))); // [N, C]
    const pBar = tf.exp(logBar);
    const klAll = tf.mean(tf.sum(tf.mul(pBar, tf.sub(logBar, logp)), 2)); // [M, N] -> mean
    return [ceAll as tf.Scalar, klAll as tf.Scalar];
  });
  return { total: tf.add(ce, kl) as tf.Scalar, ce, kl };
}
