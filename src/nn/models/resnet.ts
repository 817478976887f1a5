import * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, conv2d, convOut, normalize } from '../layers.js';
import type { ArchSpec, ForwardOptions, InputShape, Model, NormKind, Params, ResolvedArch } from '../types.js';
import { makeModel } from './common.js';

interface Block {
  name: string;
  stride: number;
  shortcut: boolean;
}

/** Blocks per stage and the block kind of each depth (reference `ResNet(BasicBlock | Bottleneck, ...)`). */
const DEPTHS = {
  resnet18: { blocks: [2, 2, 2, 2], bottleneck: false },
  resnet50: { blocks: [3, 4, 6, 3], bottleneck: true },
} as const;

/** A bottleneck block widens its output to 4x its planes (reference `Bottleneck.expansion`). */
const BOTTLENECK_EXPANSION = 4;

/**
 * ResNet-18 (reference `ResNet(BasicBlock, [2, 2, 2, 2])`) and ResNet-50 (`ResNet(Bottleneck, [3, 4, 6, 3])`):
 * conv 3x3 64 (no bias) -> norm -> act, four stages of blocks (planes 64, 128, 256, 512 x width/64, stride 2
 * from the second stage on, 1x1 conv + norm shortcut where the shape changes), global average pooling,
 * linear. A basic block is conv 3x3 -> norm -> act -> conv 3x3 -> norm; a bottleneck block conv 1x1 ->
 * norm -> act -> conv 3x3 (the stride) -> norm -> act -> conv 1x1 to 4x the planes -> norm; either adds the
 * shortcut, then the activation. The reference pools with avg_pool2d(4) on what is a 4x4 map for 28x28 and
 * 32x32 inputs, i.e. a global average: heads 'flatten' and 'gap' are therefore the same network here.
 * Instance norm by default, batch norm for ResNet18BN / ResNet50BN.
 */
export function buildResNet(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { name, width, norm, act } = arch;
  if (name !== 'resnet18' && name !== 'resnet50') throw new Error(`buildResNet: '${name}' is not a ResNet`);
  const { blocks: perStage, bottleneck } = DEPTHS[name];
  const reg = new ParamRegistry();
  reg.conv('stem.conv', 3, input.channels, width, false);
  let h = input.height;
  let w = input.width;
  reg.norm('stem.norm', norm, width, h, w);
  const blocks: Block[] = [];
  let cin = width;
  [1, 2, 4, 8].forEach((mult, stage) => {
    const planes = mult * width;
    const cout = bottleneck ? BOTTLENECK_EXPANSION * planes : planes;
    for (let b = 0; b < perStage[stage]; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const blockName = `layer${stage + 1}.${b}`;
      const shortcut = stride !== 1 || cin !== cout;
      const h2 = convOut(h, 3, stride, 1);
      const w2 = convOut(w, 3, stride, 1);
      if (bottleneck) registerBottleneck(reg, blockName, norm, cin, planes, cout, [h, w], [h2, w2]);
      else registerBasic(reg, blockName, norm, cin, planes, [h2, w2]);
      if (shortcut) {
        reg.conv(`${blockName}.shortcut.conv`, 1, cin, cout, false);
        reg.norm(`${blockName}.shortcut.norm`, norm, cout, h2, w2);
      }
      blocks.push({ name: blockName, stride, shortcut });
      h = h2;
      w = w2;
      cin = cout;
    }
  });
  reg.linear('classifier', cin, input.classes);

  const normed = (params: Params, layer: string, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D =>
    normalize(norm, params, layer, x, opts);
  const residual = (params: Params, x: tf.Tensor4D, b: Block, opts: ForwardOptions): tf.Tensor4D => {
    if (!bottleneck) {
      const out = activate(act, normed(params, `${b.name}.norm1`, conv2d(params, `${b.name}.conv1`, x, b.stride, 1), opts));
      return normed(params, `${b.name}.norm2`, conv2d(params, `${b.name}.conv2`, out, 1, 1), opts);
    }
    let out = activate(act, normed(params, `${b.name}.norm1`, conv2d(params, `${b.name}.conv1`, x, 1, 0), opts));
    out = activate(act, normed(params, `${b.name}.norm2`, conv2d(params, `${b.name}.conv2`, out, b.stride, 1), opts));
    return normed(params, `${b.name}.norm3`, conv2d(params, `${b.name}.conv3`, out, 1, 0), opts);
  };
  const block = (params: Params, x: tf.Tensor4D, b: Block, opts: ForwardOptions): tf.Tensor4D => {
    const skip = b.shortcut ? normed(params, `${b.name}.shortcut.norm`, conv2d(params, `${b.name}.shortcut.conv`, x, b.stride, 0), opts) : x;
    return activate(act, tf.add(residual(params, x, b, opts), skip));
  };

  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'classifier',
    trunk: (params, x, opts) => {
      let y = activate(act, normed(params, 'stem.norm', conv2d(params, 'stem.conv', x, 1, 1), opts));
      for (const b of blocks) y = block(params, y, b, opts);
      return y;
    },
    flatHead: (_params, a) => tf.mean(a, [1, 2]),
  });
}

function registerBasic(reg: ParamRegistry, name: string, norm: NormKind, cin: number, planes: number, [h2, w2]: [number, number]): void {
  reg.conv(`${name}.conv1`, 3, cin, planes, false);
  reg.norm(`${name}.norm1`, norm, planes, h2, w2);
  reg.conv(`${name}.conv2`, 3, planes, planes, false);
  reg.norm(`${name}.norm2`, norm, planes, h2, w2);
}

/** The first 1x1 conv runs at the input's resolution, the 3x3 conv carries the stride. */
function registerBottleneck(
  reg: ParamRegistry,
  name: string,
  norm: NormKind,
  cin: number,
  planes: number,
  cout: number,
  [h, w]: [number, number],
  [h2, w2]: [number, number],
): void {
  reg.conv(`${name}.conv1`, 1, cin, planes, false);
  reg.norm(`${name}.norm1`, norm, planes, h, w);
  reg.conv(`${name}.conv2`, 3, planes, planes, false);
  reg.norm(`${name}.norm2`, norm, planes, h2, w2);
  reg.conv(`${name}.conv3`, 1, planes, cout, false);
  reg.norm(`${name}.norm3`, norm, cout, h2, w2);
}
