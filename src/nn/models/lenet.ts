import type * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, flatten, linear, pool2 } from '../layers.js';
import type { ArchSpec, InputShape, Model, ResolvedArch } from '../types.js';
import { is28, makeModel } from './common.js';

/**
 * LeNet (reference): conv 5x5 6 (padding 2 on 28x28 inputs) -> act -> maxpool -> conv 5x5 16 -> act ->
 * maxpool -> fc 120 -> fc 84 -> fc classes. Head 'gap' replaces the second max pool and the fc stack by
 * global average pooling and one linear layer 16 -> classes (so the CAM is exact).
 */
export function buildLeNet(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { act, head } = arch;
  const reg = new ParamRegistry();
  const pad0 = is28(input) ? 2 : 0;
  let h = Math.floor(convOut(input.height, 5, 1, pad0) / 2);
  let w = Math.floor(convOut(input.width, 5, 1, pad0) / 2);
  h = convOut(h, 5, 1, 0);
  w = convOut(w, 5, 1, 0);
  if (head === 'flatten') {
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  if (h < 1 || w < 1) throw new Error(`lenet needs inputs of at least 16x16 (got ${input.height}x${input.width})`);
  reg.conv('conv1', 5, input.channels, 6);
  reg.conv('conv2', 5, 6, 16);
  if (head === 'flatten') {
    reg.linear('fc1', 16 * h * w, 120);
    reg.linear('fc2', 120, 84);
    reg.linear('fc3', 84, input.classes);
  } else {
    reg.linear('fc', 16, input.classes);
  }
  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: head === 'flatten' ? 'fc3' : 'fc',
    trunk: (params, x) => {
      let y: tf.Tensor4D = pool2('max', activate(act, conv2d(params, 'conv1', x, 1, pad0)));
      y = activate(act, conv2d(params, 'conv2', y, 1, 0));
      return head === 'flatten' ? pool2('max', y) : y;
    },
    flatHead: (params, a) => activate(act, linear(params, 'fc2', activate(act, linear(params, 'fc1', flatten(a))))),
  });
}
