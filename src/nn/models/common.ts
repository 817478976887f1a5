import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../util/rng.js';
import { ParamRegistry, flatten, globalAvgPool, linear } from '../layers.js';
import type { ArchSpec, BnState, ForwardOptions, InputShape, Model, Params, ResolvedArch } from '../types.js';

/**
 * What a convolutional architecture supplies; `makeModel` turns it into a `Model`.
 * For head 'gap' the trunk must end on the map the classifier averages (the final pooling layer of the
 * flatten variant is replaced by the global average pool), so the CAM sum_k W[k, y] A_k is exact.
 */
export interface NetDef {
  arch: ResolvedArch;
  /** What the model reports as its architecture (zoo `canonicalArch`). */
  canonical: ArchSpec;
  input: InputShape;
  reg: ParamRegistry;
  /** The last feature map [N, h, w, K]. */
  trunk(params: Params, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D;
  /** Flatten head: the classifier's input vector from the trunk map (default: flatten it). */
  flatHead?(params: Params, a: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  /** Name of the final linear layer (its `.weight` is [D, classes]). */
  classifier: string;
}

export function makeModel(def: NetDef): Model {
  const { reg, arch, input } = def;
  const gap = arch.head === 'gap';
  const embed = (params: Params, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D => {
    checkInput(input, x);
    const a = def.trunk(params, x, opts);
    if (gap) return globalAvgPool(a);
    return def.flatHead ? def.flatHead(params, a, opts) : flatten(a);
  };
  const model: Model = {
    arch: def.canonical,
    input,
    paramSpecs: reg.specs.map(({ name, shape }) => ({ name, shape })),
    bnSpecs: reg.bnSpecs,
    init: (rng: Rng) => reg.init(rng),
    initBnState: (): BnState => reg.initBnState(),
    embed,
    forward: (params, x, opts) => linear(params, def.classifier, embed(params, x, opts)),
    paramCount: () => reg.paramCount(),
  };
  if (gap) {
    model.features = (params, x, opts) => {
      checkInput(input, x);
      return def.trunk(params, x, opts);
    };
    model.classifierWeights = (params) => params[`${def.classifier}.weight`] as tf.Tensor2D;
    model.classifierBias = (params) => params[`${def.classifier}.bias`] as tf.Tensor1D;
  }
  return model;
}

export function checkInput(input: InputShape, x: tf.Tensor): void {
  const [, h, w, c] = x.shape;
  if (x.rank !== 4 || h !== input.height || w !== input.width || c !== input.channels) {
    throw new Error(
      `model built for NHWC [N, ${input.height}, ${input.width}, ${input.channels}] got [${x.shape.join(', ')}]`,
    );
  }
}

/** The reference pads the first conv so that 28x28 inputs behave like 32x32 ones. */
export function is28(input: InputShape): boolean {
  return input.height === 28 && input.width === 28;
}
