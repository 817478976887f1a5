/**
 * BatchMatMul / _FusedMatMul wrappers for the wasm backend.
 *
 * The stock wasm kernel hands the product to XNNPACK only when neither operand
 * is transposed and both batch dimensions are 1; every other case runs a
 * scalar triple loop. Measured here (2-core AMD EPYC, one wasm thread):
 * [12544x128]^T x [12544x128] took 286 ms with transposeA, 11 ms for an explicit
 * transpose plus 22 ms for the plain product; [65536x128] x [128x128]^T took
 * 1578 ms with transposeB and 123 ms untransposed. So: transpose explicitly and
 * call the original kernel with both flags off; for batched products with
 * enough work per matrix, run one XNNPACK product per batch entry.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor, originalKernel, replaceKernel } from '../registry.js';

/** Per-matrix multiply-adds above which a batched product is split into 2-D XNNPACK calls. */
export const BATCH_SPLIT_MIN_MACS = 64 * 64 * 64;

function lastTwoSwapped(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

function explicitTranspose(t: tf.Tensor, doIt: boolean): tf.Tensor {
  return doIt ? tf.transpose(t, lastTwoSwapped(t.rank)) : t;
}

/**
 * Runs the original wasm kernel on operands that are already untransposed.
 * Extra fused inputs/attrs (bias, activation) are passed through unchanged.
 */
function callOriginal(
  kernelName: string,
  backend: object,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const orig = originalKernel(kernelName, 'wasm');
  if (orig === undefined) throw new Error(`metadd engine: no original wasm kernel for ${kernelName}`);
  const out = orig.kernelFunc({ inputs, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
  return Array.isArray(out) ? (out[0] as tf.TensorInfo) : out;
}

function wrapMatMul(kernelName: string): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const transposeA = Boolean(attrs?.transposeA);
    const transposeB = Boolean(attrs?.transposeB);
    const a = asTensor(inputs.a, 'a');
    const b = asTensor(inputs.b, 'b');
    const batchA = a.shape.slice(0, -2).reduce((p, d) => p * d, 1);
    const batchB = b.shape.slice(0, -2).reduce((p, d) => p * d, 1);
    const m = transposeA ? a.shape[a.rank - 1] : a.shape[a.rank - 2];
    const k = transposeA ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
    const n = transposeB ? b.shape[b.rank - 2] : b.shape[b.rank - 1];
    const fused = kernelName === tf._FusedMatMul;
    const batched = batchA > 1 || batchB > 1;
    // Splitting needs no broadcast copy only when one side is a single matrix
    // or both batch shapes agree.
    const simpleBroadcast = batchA === 1 || batchB === 1 || tf.util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const split = batched && !fused && simpleBroadcast && m * k * n >= BATCH_SPLIT_MIN_MACS;
    if (!transposeA && !transposeB && !split) {
      return callOriginal(kernelName, backend, inputs, attrs ?? {});
    }
    return tf.tidy(() => {
      const aa = explicitTranspose(a, transposeA);
      const bb = explicitTranspose(b, transposeB);
      if (!split) {
        const result = callOriginal(kernelName, backend, { ...inputs, a: aa, b: bb }, attrs ?? {});
        return tf.engine().makeTensorFromTensorInfo(result);
      }
      return splitBatched(aa, bb, backend);
    });
  };
}

/**
 * Batched product as one XNNPACK call per batch entry. Only used when the
 * batch dimensions are equal or one side has a single matrix (checked by the
 * caller), so no broadcast copy is needed: tf.broadcastTo goes through Tile,
 * which took 4.4 s for a 33M-element result here.
 */
function splitBatched(a: tf.Tensor, b: tf.Tensor, backend: object): tf.Tensor {
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = outer.reduce((p, d) => p * d, 1);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.rank - 1];
  const batchA = a.size / (m * k);
  const batchB = b.size / (k * n);
  const a3 = tf.reshape(a, [batchA, m, k]);
  const b3 = tf.reshape(b, [batchB, k, n]);
  const parts: tf.Tensor[] = [];
  for (let i = 0; i < batch; i++) {
    const ai = batchA === 1 ? a3 : tf.slice(a3, [i, 0, 0], [1, m, k]);
    const bi = batchB === 1 ? b3 : tf.slice(b3, [i, 0, 0], [1, k, n]);
    const r = callOriginal(tf.BatchMatMul, backend, { a: ai, b: bi }, {});
    parts.push(tf.engine().makeTensorFromTensorInfo(r));
  }
  return tf.reshape(tf.concat(parts, 0), [...outer, m, n]);
}

export function registerMatMulKernels(): void {
  for (const kernelName of [tf.BatchMatMul, tf._FusedMatMul]) {
    if (originalKernel(kernelName, 'wasm') === undefined) continue;
    replaceKernel({ kernelName, backendName: 'wasm', kernelFunc: wrapMatMul(kernelName) });
  }
}
