import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../../nn/checkpoint.js';
import type { BnState, Model, Params } from '../../nn/types.js';
import { archLabel } from '../../nn/zoo.js';
import { normalizedCams } from './cam.js';

/** A frozen auxiliary network: a gap-head model with its trained parameters. */
export interface AuxNet {
  label: string;
  model: Model;
  params: Params;
  bnState: BnState;
}

/** Loads the network of a pretrain artifact; it must have a 'gap' head (exact CAMs). */
export function loadAuxNet(dir: string): AuxNet {
  const { model, params, bnState } = loadModel(dir);
  if (!model.features || !model.classifierWeights || !model.classifierBias) {
    throw new Error(`${dir}: auxiliary network ${archLabel(model.arch)} has no 'gap' head, so no exact class activation maps`);
  }
  return { label: archLabel(model.arch), model, params, bnState };
}

export function disposeAuxNet(net: AuxNet): void {
  tf.dispose([...Object.values(net.params), ...Object.values(net.bnState)]);
}

export interface AuxOutputs {
  /** [N, classes]. */
  logits: tf.Tensor2D;
  /** Normalised CAMs of the given labels at the image size, [N, H, W]. */
  cams: tf.Tensor3D;
}

/**
 * One pass through the trunk gives both outputs: logits = mean_hw(A) W + b (what `forward` computes
 * for a gap head) and the CAM from the same A. Evaluation mode: batch norm reads the running statistics.
 */
export function auxOutputs(net: AuxNet, x: tf.Tensor4D, labels: tf.Tensor1D): AuxOutputs {
  const m = net.model;
  // loadAuxNet checked that these exist.
  const features = (m.features as NonNullable<Model['features']>)(net.params, x, { training: false, bnState: net.bnState });
  const w = (m.classifierWeights as NonNullable<Model['classifierWeights']>)(net.params);
  const b = (m.classifierBias as NonNullable<Model['classifierBias']>)(net.params);
  const logits = tf.add(tf.matMul(tf.mean(features, [1, 2]) as tf.Tensor2D, w), b) as tf.Tensor2D;
  const [, h, wd] = x.shape;
  return { logits, cams: normalizedCams(features, w, labels, h, wd) };
}
