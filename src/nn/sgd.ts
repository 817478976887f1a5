import * as tf from '@tensorflow/tfjs-core';
import type { Params } from './types.js';

export interface SgdConfig {
  lr: number;
  momentum: number;
  weightDecay: number;
}

/**
 * One step of PyTorch `torch.optim.SGD` (dampening 0, no Nesterov), for every parameter:
 *   g = grad + weight_decay * p;  buf = momentum * buf + g;  p = p - lr * buf
 * PyTorch starts `buf` as a copy of the first g; starting from zeros gives the same bits
 * (momentum * 0 + g = g exactly). Weight decay applies to every parameter, biases and norm affines
 * included, as `SGD(net.parameters(), ...)` does in the reference.
 *
 * Returns new tensors; the caller disposes the old `params` and `buffers` it no longer needs.
 * With momentum 0 no buffers are kept (`buffers` out is {}).
 */
export function sgdStep(params: Params, grads: Params, buffers: Params, cfg: SgdConfig): { params: Params; buffers: Params } {
  return tf.tidy(() => {
    const next: Params = {};
    const nextBuf: Params = {};
    for (const [name, p] of Object.entries(params)) {
      const grad = grads[name];
      if (!grad) throw new Error(`sgdStep: no gradient for ${name}`);
      let g = cfg.weightDecay !== 0 ? tf.add(grad, tf.mul(p, cfg.weightDecay)) : grad;
      if (cfg.momentum !== 0) {
        const buf = buffers[name];
        g = buf ? tf.add(tf.mul(buf, cfg.momentum), g) : tf.clone(g);
        nextBuf[name] = g;
      }
      next[name] = tf.sub(p, tf.mul(g, cfg.lr));
    }
    return { params: next, buffers: nextBuf };
  });
}

/** Zero momentum buffers shaped like `params` (what a freshly created optimizer has, up to bits; see sgdStep). */
export function zeroBuffers(params: Params): Params {
  const out: Params = {};
  for (const [name, p] of Object.entries(params)) out[name] = tf.zerosLike(p);
  return out;
}

export function disposeParams(...sets: (Params | undefined | null)[]): void {
  for (const s of sets) if (s) for (const t of Object.values(s)) t.dispose();
}
