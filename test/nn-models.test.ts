import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { updateBnState } from '../src/nn/layers.js';
import type { ArchSpec, BnBatchStats, InputShape } from '../src/nn/types.js';
import { archLabel, buildModel, canonicalArch, resolveArch } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { maxAbsDiff, setupBackend } from './nn-backend.js';

const MNIST: InputShape = { channels: 1, height: 28, width: 28, classes: 10 };
const CIFAR: InputShape = { channels: 3, height: 32, width: 32, classes: 10 };

/**
 * Trainable parameter counts of the reference networks (VICO-UoE/DatasetCondensation networks.py),
 * worked out by hand from the layer definitions. conv = cin*k*k*cout + cout (bias), linear = in*out + out,
 * instance norm (GroupNorm(C, C, affine)) = 2C.
 */
const REFERENCE_COUNTS: Record<string, [number, number]> = {
  // ConvNet-3 w128: conv1 cin*9*128+128 (1ch: 1280, 3ch: 3584); conv2 = conv3 = 128*9*128+128 = 147584;
  // 3 norms x 256 = 768; fc 2048*10+10 = 20490.
  // 1ch: 1280 + 2*147584 + 768 + 20490 = 317706;  3ch: 3584 + 295168 + 768 + 20490 = 320010.
  convnet: [317706, 320010],
  // MLP: fc1 (784 | 3072)*128+128 = 100480 | 393344; fc2 128*128+128 = 16512; fc3 128*10+10 = 1290.
  mlp: [118282, 411146],
  // LeNet: conv1 cin*25*6+6 (156 | 456); conv2 6*25*16+16 = 2416; fc1 400*120+120 = 48120;
  // fc2 120*84+84 = 10164; fc3 84*10+10 = 850. 1ch: 61706; 3ch: 62006.
  lenet: [61706, 62006],
  // AlexNet: conv1 cin*25*128+128 (3328 | 9728); conv2 128*25*192+192 = 614592; conv3 192*9*256+256 = 442624;
  // conv4 256*9*192+192 = 442560; conv5 192*9*192+192 = 331968; fc 192*4*4*10+10 = 30730.
  // 1ch: 1865802; 3ch: 1872202.
  alexnet: [1865802, 1872202],
  // VGG-11 (instance norm): convs 1|3->64 (640 | 1792), 64->128 73856, 128->256 295168, 256->256 590080,
  // 256->512 1180160, then 3 x 512->512 2359808; norms 2*(64+128+256+256+512*4) = 5504; fc 512*10+10 = 5130.
  // 1ch: 640 + 73856 + 295168 + 590080 + 1180160 + 7079424 + 5504 + 5130 = 9229962; 3ch: +1152 = 9231114.
  vgg11: [9229962, 9231114],
  // ResNet-18 (no conv biases): stem cin*9*64 (576 | 1728) + norm 128; layer1 2*(2*36864 + 256) = 147968;
  // layer2 (73728 + 147456 + 8192 + 3*256) + (2*147456 + 512) = 525568; layer3 (294912 + 589824 + 32768 +
  // 3*512) + (2*589824 + 1024) = 2099712; layer4 (1179648 + 2359296 + 131072 + 3*1024) + (2*2359296 + 2048)
  // = 8393728; fc 5130. 3ch: 1856 + 147968 + 525568 + 2099712 + 8393728 + 5130 = 11173962; 1ch: -1152.
  resnet18: [11172810, 11173962],
  // VGG-19: config (64, 64, M, 128, 128, M, 256 x4, M, 512 x4, M, 512 x4, M), conv = cin*9*cout + cout, instance
  // norm 2*cout, fc 512*10+10 = 5130. 3ch: 20040522; 1ch: -2*9*64 = 20039370. Independently: torchvision's vgg19
  // has 143,667,240 parameters, of which its classifier (25088-4096-4096-1000) holds 123,642,856: the convs
  // hold 20,024,384; + norms 2*(2*64 + 2*128 + 4*256 + 8*512) = 11,008 + fc 5,130 = 20,040,522.
  vgg19: [20039370, 20040522],
  // ResNet-50 (bottleneck blocks [3, 4, 6, 3], expansion 4, no conv biases): stem cin*9*64 (576 | 1728) + norm
  // 128; a block of planes p from cin: cin*p + 9*p*p + 4*p*p convs, norms 2*(p + p + 4p), and where the shape
  // changes a 1x1 shortcut cin*4p + norm 8p: stages 215808, 1219584, 7098368, 14964736; fc 2048*10+10 = 20490.
  // 3ch: 23520842; 1ch: -1152. Independently: torchvision's resnet50 (25,557,032; batch norm has the same
  // 2C affine parameters) with a 3x3 instead of 7x7 stem (-7,680) and 10 instead of 1000 classes
  // (-2,028,510) gives 23,520,842.
  resnet50: [23519690, 23520842],
  // Swin-S for 32x32 (28x28 padded to 32x32): patch embed cin*2*2*96 + 96 (480 | 1248) + its norm 192; a block
  // at width C with window w and H heads: norms 4C, qkv C*3C + 3C, bias table (2w - 1)^2 * H, proj C*C + C,
  // MLP C*4C + 4C + 4C*C + C; merging: norm 8C + 4C*2C. Windows 4, 4, 4, 2 (stage maps 16, 8, 4, 2): stages
  // 298470, 1186764, 33133656, 14176176; final norm 1536; fc 768*10 + 10 = 7690. 3ch: 48805732; 1ch: -768.
  // The same arithmetic for timm's swin_small_patch4_window7_224 (4x4 patches, 7x7 windows, 1000 classes)
  // gives its published 49,606,258.
  swin: [48804964, 48805732],
};

const EMBED_DIMS: Record<string, [number, number]> = {
  convnet: [2048, 2048],
  mlp: [128, 128],
  lenet: [84, 84],
  alexnet: [3072, 3072],
  vgg11: [512, 512],
  resnet18: [512, 512],
  vgg19: [512, 512],
  resnet50: [2048, 2048],
  swin: [768, 768],
};

before(async () => {
  await setupBackend();
});

describe('model zoo', () => {
  for (const [name, counts] of Object.entries(REFERENCE_COUNTS)) {
    it(`${name}: parameter counts match the reference definitions`, () => {
      [MNIST, CIFAR].forEach((input, i) => {
        const model = buildModel(name as ArchSpec['name'], input);
        assert.equal(model.paramCount(), counts[i], `${name} ${input.channels}x${input.height}`);
        const fromSpecs = model.paramSpecs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
        assert.equal(fromSpecs, counts[i]);
      });
    });
  }

  for (const name of Object.keys(REFERENCE_COUNTS)) {
    it(`${name}: forward and embed shapes on 28x28x1 and 32x32x3`, () => {
      [MNIST, CIFAR].forEach((input, i) => {
        const model = buildModel(name as ArchSpec['name'], input);
        const params = model.init(createRng(`${name}-${i}`));
        const bn = model.initBnState();
        tf.tidy(() => {
          const x = tf.randomNormal([2, input.height, input.width, input.channels], 0, 1, 'float32', 7) as tf.Tensor4D;
          const logits = model.forward(params, x, { training: false, bnState: bn });
          assert.deepEqual(logits.shape, [2, 10]);
          assert.ok(logits.dataSync().every(Number.isFinite));
          assert.deepEqual(model.embed(params, x, { training: true }).shape, [2, EMBED_DIMS[name][i]]);
        });
        tf.dispose(Object.values(params));
        tf.dispose(Object.values(bn));
      });
    });
  }

  it('initialisation is PyTorch-like (uniform +-1/sqrt(fan_in), norm affine 1/0) and seeded', () => {
    const model = buildModel('convnet', MNIST);
    const a = model.init(createRng('seed-a'));
    const b = model.init(createRng('seed-a'));
    const c = model.init(createRng('seed-b'));
    for (const s of model.paramSpecs) assert.deepEqual(a[s.name].shape, s.shape);
    const w1 = Array.from(a['block1.conv.weight'].dataSync());
    const bound = 1 / Math.sqrt(128 * 9);
    assert.ok(w1.every((v) => Math.abs(v) <= bound));
    // A uniform on [-b, b] has standard deviation b / sqrt(3).
    const std = Math.sqrt(w1.reduce((s, v) => s + v * v, 0) / w1.length);
    assert.ok(Math.abs(std - bound / Math.sqrt(3)) < 0.02 * bound, `std ${std}`);
    assert.ok(a['classifier.bias'].dataSync().every((v) => Math.abs(v) <= 1 / Math.sqrt(2048)));
    assert.ok(a['block0.norm.weight'].dataSync().every((v) => v === 1));
    assert.ok(a['block0.norm.bias'].dataSync().every((v) => v === 0));
    assert.equal(maxAbsDiff(a['block1.conv.weight'], b['block1.conv.weight']), 0);
    assert.ok(maxAbsDiff(a['block1.conv.weight'], c['block1.conv.weight']) > 0);
    tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(c)]);
  });

  for (const name of ['convnet', 'lenet', 'alexnet', 'vgg11', 'vgg19', 'resnet18', 'resnet50', 'swin'] as const) {
    it(`${name} head 'gap': logits = mean_hw(features) x classifierWeights + bias (exact CAM)`, () => {
      const input = name === 'convnet' || name === 'lenet' ? MNIST : CIFAR;
      const narrow = name.startsWith('vgg') || name.startsWith('resnet');
      const arch: ArchSpec = narrow ? { name, head: 'gap', width: 8 } : name === 'swin' ? { name, head: 'gap', width: 32 } : { name, head: 'gap' };
      const model = buildModel(arch, input);
      assert.ok(model.features && model.classifierWeights && model.classifierBias);
      const params = model.init(createRng(name));
      tf.tidy(() => {
        const x = tf.randomNormal([3, input.height, input.width, input.channels], 0, 1, 'float32', 3) as tf.Tensor4D;
        const opts = { training: true };
        const a = model.features!(params, x, opts);
        const w = model.classifierWeights!(params);
        assert.equal(a.shape[3], w.shape[0]);
        assert.equal(w.shape[1], 10);
        // The CAM of class y is sum_k W[k, y] A_k; its spatial mean must be the logit minus the bias.
        const [n, h, wd, k] = a.shape;
        const cams = tf.reshape(tf.matMul(tf.reshape(a, [n * h * wd, k]), w), [n, h, wd, 10]);
        const fromCam = tf.mean(cams, [1, 2]);
        const logits = tf.sub(model.forward(params, x, opts), model.classifierBias!(params));
        assert.ok(maxAbsDiff(fromCam, logits) < 1e-4, `difference ${maxAbsDiff(fromCam, logits)}`);
        assert.deepEqual(model.embed(params, x, opts).shape, [3, w.shape[0]]);
      });
      tf.dispose(Object.values(params));
    });
  }

  it('convnet gap keeps the pre-pool map: 8x8 on 28x28 inputs, same logits as flatten-free avg pooling', () => {
    const model = buildModel({ name: 'convnet', head: 'gap', width: 16 }, MNIST);
    const params = model.init(createRng(1));
    tf.tidy(() => {
      const x = tf.randomNormal([1, 28, 28, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
      assert.deepEqual(model.features!(params, x, { training: true }).shape, [1, 8, 8, 16]);
    });
    tf.dispose(Object.values(params));
  });

  it('batch norm: training uses batch statistics, running stats update with the unbiased variance', () => {
    const model = buildModel({ name: 'convnet', norm: 'batch', width: 4, depth: 1 }, { channels: 1, height: 6, width: 6, classes: 2 });
    assert.deepEqual(model.bnSpecs.map((s) => s.name), ['block0.norm.running_mean', 'block0.norm.running_var']);
    const params = model.init(createRng(2));
    const state = model.initBnState();
    const stats: Record<string, BnBatchStats> = {};
    const x = tf.randomNormal([5, 6, 6, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const logitsTrain = model.forward(params, x, { training: true, bnStats: stats });
    const st = stats['block0.norm'];
    assert.ok(st);
    assert.equal(st.count, 5 * 6 * 6);
    const conv = tf.add(tf.conv2d(x, params['block0.conv.weight'] as tf.Tensor4D, 1, 1), params['block0.conv.bias']);
    const { mean, variance } = tf.moments(conv, [0, 1, 2]);
    assert.ok(maxAbsDiff(st.mean, mean) < 1e-5);
    assert.ok(maxAbsDiff(st.variance, variance) < 1e-5);
    const next = updateBnState(state, stats);
    const n = st.count;
    const expectVar = variance.dataSync().map((v) => 0.9 * 1 + 0.1 * v * (n / (n - 1)));
    const expectMean = mean.dataSync().map((v) => 0.1 * v);
    assert.ok(maxAbsDiff(next['block0.norm.running_var'], expectVar) < 1e-5);
    assert.ok(maxAbsDiff(next['block0.norm.running_mean'], expectMean) < 1e-6);
    // Evaluation mode reads the running statistics, so its logits differ from the training-mode ones.
    const logitsEval = model.forward(params, x, { training: false, bnState: next });
    assert.ok(maxAbsDiff(logitsTrain, logitsEval) > 1e-3);
    assert.throws(() => model.forward(params, x, { training: false }), /running statistics/);
    tf.dispose([x, logitsTrain, logitsEval, conv, mean, variance, st.mean, st.variance]);
    tf.dispose([...Object.values(params), ...Object.values(state), ...Object.values(next)]);
  });

  it('every norm kind of ConvNet runs and normalises (instance: zero mean, unit variance per channel)', () => {
    const input = { channels: 1, height: 8, width: 8, classes: 3 };
    for (const norm of ['none', 'batch', 'layer', 'instance', 'group'] as const) {
      const model = buildModel({ name: 'convnet', norm, width: 8, depth: 2, pool: 'max', act: 'tanh' }, input);
      const params = model.init(createRng(norm));
      tf.tidy(() => {
        const y = model.forward(params, tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 5) as tf.Tensor4D, { training: true });
        assert.deepEqual(y.shape, [2, 3]);
      });
      tf.dispose(Object.values(params));
    }
    const model = buildModel({ name: 'convnet', width: 4, depth: 1, pool: 'none', act: 'leakyrelu', head: 'gap' }, input);
    const params = model.init(createRng(0));
    tf.tidy(() => {
      // With gamma = 1, beta = 0 the normalised maps pass a leaky ReLU (slope 0.01), which inverts exactly.
      const f = model.features!(params, tf.randomNormal([2, 8, 8, 1], 0, 1, 'float32', 9) as tf.Tensor4D, { training: true });
      const a = tf.where(tf.greater(f, 0), f, tf.div(f, 0.01));
      const { mean, variance } = tf.moments(a, [1, 2]);
      assert.ok(maxAbsDiff(mean, tf.zerosLike(mean)) < 1e-3);
      assert.ok(maxAbsDiff(variance, tf.onesLike(variance)) < 1e-2);
    });
    tf.dispose(Object.values(params));
  });

  it('resnet50 bottlenecks stride in their 3x3 conv, as the reference: the first 1x1 conv keeps the input resolution', () => {
    // With layer norm each norm's affine parameters have the shape of the map it normalises.
    const model = buildModel({ name: 'resnet50', norm: 'layer', width: 8 }, CIFAR);
    const shape = (name: string): number[] => model.paramSpecs.find((s) => s.name === name)?.shape ?? [];
    assert.deepEqual(shape('layer2.0.norm1.weight'), [32, 32, 16], 'conv1 (1x1) at the input resolution');
    assert.deepEqual(shape('layer2.0.norm2.weight'), [16, 16, 16], 'conv2 (3x3) halves it');
    assert.deepEqual(shape('layer2.0.norm3.weight'), [16, 16, 64], 'conv3 widens to 4x the planes');
    assert.deepEqual(shape('layer2.0.shortcut.norm.weight'), [16, 16, 64]);
    assert.deepEqual(shape('layer1.0.shortcut.norm.weight'), [32, 32, 32], 'the first block widens 8 -> 32 channels: a shortcut conv');
    assert.deepEqual(shape('layer1.1.shortcut.norm.weight'), [], 'later blocks of a stage add their input');
  });

  it('vgg19 pools after convs 2, 4, 8, 12 and 16, as its configuration: the map each conv sees', () => {
    const model = buildModel({ name: 'vgg19', norm: 'layer', width: 8 }, CIFAR);
    const sides = Array.from({ length: 16 }, (_, i) => model.paramSpecs.find((s) => s.name === `conv${i}.norm.weight`)?.shape[0]);
    assert.deepEqual(sides, [32, 32, 16, 16, 8, 8, 8, 8, 4, 4, 4, 4, 2, 2, 2, 2]);
  });

  it('resolves and validates architecture options', () => {
    assert.deepEqual(canonicalArch('convnet'), { name: 'convnet', width: 128, depth: 3, norm: 'instance', act: 'relu', pool: 'avg', head: 'flatten' });
    assert.deepEqual(canonicalArch({ name: 'alexnet', norm: 'none' }), { name: 'alexnet', act: 'relu', head: 'flatten' });
    assert.equal(resolveArch('vgg11').norm, 'instance');
    assert.equal(archLabel({ name: 'resnet18', norm: 'batch' }), 'resnet18-batch');
    assert.throws(() => resolveArch({ name: 'alexnet', norm: 'batch' }), /fixed/);
    assert.throws(() => resolveArch({ name: 'mlp', head: 'gap' }), /fixed to flatten/);
    assert.throws(() => resolveArch({ name: 'nope' as ArchSpec['name'] }), /unknown architecture/);
    assert.throws(() => buildModel('convnet', { channels: 1, height: 28, width: 28, classes: 0 }), /classes/);
    const model = buildModel('mlp', MNIST);
    const params = model.init(createRng(0));
    assert.throws(() => model.forward(params, tf.zeros([1, 32, 32, 3]) as tf.Tensor4D, { training: false }), /NHWC/);
    tf.dispose(Object.values(params));
  });
});
