import * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, linear } from '../layers.js';
import type { ArchSpec, InputShape, Model, Params, ResolvedArch } from '../types.js';
import { checkInput } from './common.js';

/** MLP: flattened image -> width -> width -> classes (reference: 784-128-128-C), activation between layers. */
export function buildMlp(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { width, act } = arch;
  const reg = new ParamRegistry();
  const din = input.channels * input.height * input.width;
  reg.linear('fc1', din, width);
  reg.linear('fc2', width, width);
  reg.linear('fc3', width, input.classes);
  const embed = (params: Params, x: tf.Tensor4D): tf.Tensor2D => {
    checkInput(input, x);
    // NHWC flatten order (H, W, C), like every flatten in the zoo; see docs/models.md on layouts.
    const flat = tf.reshape(x, [x.shape[0], din]) as tf.Tensor2D;
    return activate(act, linear(params, 'fc2', activate(act, linear(params, 'fc1', flat))));
  };
  return {
    arch: canonical,
    input,
    paramSpecs: reg.specs.map(({ name, shape }) => ({ name, shape })),
    bnSpecs: [],
    init: (rng) => reg.init(rng),
    initBnState: () => ({}),
    embed: (params, x) => embed(params, x),
    forward: (params, x) => linear(params, 'fc3', embed(params, x)),
    paramCount: () => reg.paramCount(),
  };
}
