import * as tf from '@tensorflow/tfjs-core';

/**
 * Class activation maps (Zhou et al., CVPR 2016) of networks with a global-average-pooling head: for
 * the last feature map A [h, w, K] and classifier weights W [K, C], the map of class y is
 * sum_k W[k, y] A_k, so it is exact and needs only first-order gradients to be optimised through.
 */

/** Added to the per-image maximum before dividing, so an all-zero map stays zero instead of NaN. */
export const CAM_EPS = 1e-6;

/**
 * Bilinear interpolation weights [out, in] with half-pixel centres and edge clamping: PyTorch
 * `F.interpolate(mode='bilinear', align_corners=False)` (and OpenCV `cv2.resize`), i.e. output pixel i
 * samples the input at (i + 0.5) * in / out - 0.5.
 */
export function bilinearMatrix(out: number, inSize: number): Float32Array {
  const m = new Float32Array(out * inSize);
  const scale = inSize / out;
  for (let i = 0; i < out; i++) {
    const src = Math.max(0, (i + 0.5) * scale - 0.5);
    const i0 = Math.min(Math.floor(src), inSize - 1);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const frac = src - i0;
    m[i * inSize + i0] += 1 - frac;
    m[i * inSize + i1] += frac;
  }
  return m;
}

/**
 * Raw CAMs [N, h, w]: ReLU(sum_k W[k, y_n] A[n, :, :, k]) for features A [N, h, w, K], classifier
 * weights W [K, C] and one class per image.
 */
export function rawCams(features: tf.Tensor4D, weights: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, h, w, k] = features.shape;
    // W[:, y_n] for every image: [N, K, 1].
    const wy = tf.reshape(tf.gather(tf.transpose(weights), labels), [n, k, 1]);
    const maps = tf.matMul(tf.reshape(features, [n, h * w, k]), wy);
    return tf.relu(tf.reshape(maps, [n, h, w])) as tf.Tensor3D;
  });
}

/**
 * Maps [N, h, w] resized to [N, H, W] bilinearly (bilinearMatrix): out = R_H * map * R_W^T, as two
 * matrix products, differentiable and exactly linear.
 */
export function upsample(maps: tf.Tensor3D, height: number, width: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, h, w] = maps.shape;
    if (h === height && w === width) return tf.clone(maps);
    const rw = tf.tensor2d(bilinearMatrix(width, w), [width, w]);
    const rh = tf.tensor2d(bilinearMatrix(height, h), [height, h]);
    // Columns: [N*h, w] x [w, W] -> [N, h, W].
    const cols = tf.reshape(tf.matMul(tf.reshape(maps, [n * h, w]), rw, false, true), [n, h, width]);
    // Rows: [H, h] x [h, N*W] -> [H, N, W] -> [N, H, W].
    const byRow = tf.reshape(tf.transpose(cols, [1, 0, 2]), [h, n * width]);
    const rows = tf.reshape(tf.matMul(rh, byRow), [height, n, width]);
    return tf.transpose(rows, [1, 0, 2]) as tf.Tensor3D;
  });
}

/** Each map divided by its own maximum plus CAM_EPS: values in [0, 1). */
export function normalizePerImage(maps: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => tf.div(maps, tf.add(tf.max(maps, [1, 2], true), CAM_EPS)) as tf.Tensor3D);
}

/** The MetaDD CAM: raw CAM, upsampled to the image size, normalised per image. [N, H, W]. */
export function normalizedCams(features: tf.Tensor4D, weights: tf.Tensor2D, labels: tf.Tensor1D, height: number, width: number): tf.Tensor3D {
  return tf.tidy(() => normalizePerImage(upsample(rawCams(features, weights, labels), height, width)));
}
