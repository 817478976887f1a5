import * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, normalize } from '../layers.js';
import type { ArchSpec, ForwardOptions, InputShape, Model, Params, ResolvedArch } from '../types.js';
import { makeModel } from './common.js';

interface Block {
  name: string;
  stride: number;
  shortcut: boolean;
}

/**
 * ResNet-18 (reference `ResNet(BasicBlock, [2, 2, 2, 2])`): conv 3x3 64 (no bias) -> norm -> act, four
 * stages of two basic blocks (64, 128, 256, 512 x width/64, stride 2 from the second stage on, 1x1 conv +
 * norm shortcut where the shape changes), global average pooling, linear. The reference pools with
 * avg_pool2d(4) on what is a 4x4 map for 28x28 and 32x32 inputs, i.e. a global average: heads 'flatten'
 * and 'gap' are therefore the same network here. Instance norm by default, batch norm for ResNet18BN.
 */
export function buildResNet18(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { width, norm, act } = arch;
  const reg = new ParamRegistry();
  reg.conv('stem.conv', 3, input.channels, width, false);
  let h = input.height;
  let w = input.width;
  reg.norm('stem.norm', norm, width, h, w);
  const blocks: Block[] = [];
  let cin = width;
  [1, 2, 4, 8].forEach((mult, stage) => {
    const planes = mult * width;
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const name = `layer${stage + 1}.${b}`;
      const shortcut = stride !== 1 || cin !== planes;
      const h2 = convOut(h, 3, stride, 1);
      const w2 = convOut(w, 3, stride, 1);
      reg.conv(`${name}.conv1`, 3, cin, planes, false);
      reg.norm(`${name}.norm1`, norm, planes, h2, w2);
      reg.conv(`${name}.conv2`, 3, planes, planes, false);
      reg.norm(`${name}.norm2`, norm, planes, h2, w2);
      if (shortcut) {
        reg.conv(`${name}.shortcut.conv`, 1, cin, planes, false);
        reg.norm(`${name}.shortcut.norm`, norm, planes, h2, w2);
      }
      blocks.push({ name, stride, shortcut });
      h = h2;
      w = w2;
      cin = planes;
    }
  });
  reg.linear('classifier', cin, input.classes);

  const block = (params: Params, x: tf.Tensor4D, b: Block, opts: ForwardOptions): tf.Tensor4D => {
    let out = conv2d(params, `${b.name}.conv1`, x, b.stride, 1);
    out = activate(act, normalize(norm, params, `${b.name}.norm1`, out, opts));
    out = normalize(norm, params, `${b.name}.norm2`, conv2d(params, `${b.name}.conv2`, out, 1, 1), opts);
    const skip = b.shortcut
      ? normalize(norm, params, `${b.name}.shortcut.norm`, conv2d(params, `${b.name}.shortcut.conv`, x, b.stride, 0), opts)
      : x;
    return activate(act, tf.add(out, skip));
  };

  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'classifier',
    trunk: (params, x, opts) => {
      let y = activate(act, normalize(norm, params, 'stem.norm', conv2d(params, 'stem.conv', x, 1, 1), opts));
      for (const b of blocks) y = block(params, y, b, opts);
      return y;
    },
    flatHead: (_params, a) => tf.mean(a, [1, 2]),
  });
}
