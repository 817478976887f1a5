import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';
import type { ActKind, BnState, ForwardOptions, NormKind, ParamSpec, Params, PoolKind } from './types.js';

/** PyTorch's epsilon for every normalisation layer it has (BatchNorm2d, GroupNorm, LayerNorm). */
export const NORM_EPS = 1e-5;
/** PyTorch BatchNorm2d momentum: running = (1 - m) * running + m * batch. */
export const BN_MOMENTUM = 0.1;
/** Groups of the 'group' norm (the reference ConvNet uses GroupNorm(4, C)). */
export const GROUP_NORM_GROUPS = 4;

type InitKind = { kind: 'uniform'; bound: number } | { kind: 'const'; value: number };

interface InitSpec extends ParamSpec {
  init: InitKind;
}

/**
 * Collects the parameter declarations of one network in canonical order, with their initialisers.
 * Models declare layers here once; `init` and `paramCount` follow from the declarations, so a count
 * can never drift from what `forward` reads.
 */
export class ParamRegistry {
  readonly specs: InitSpec[] = [];
  readonly bnSpecs: ParamSpec[] = [];

  private add(name: string, shape: number[], init: InitKind): void {
    if (this.specs.some((s) => s.name === name)) throw new Error(`duplicate parameter name ${name}`);
    this.specs.push({ name, shape, init });
  }

  /**
   * A conv layer with [kh, kw, cin, cout] weights. PyTorch default: kaiming_uniform(a = sqrt(5)) has
   * bound gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. exactly 1 / sqrt(fan_in); the bias
   * uses the same bound.
   */
  conv(name: string, k: number, cin: number, cout: number, bias = true): void {
    const bound = 1 / Math.sqrt(cin * k * k);
    this.add(`${name}.weight`, [k, k, cin, cout], { kind: 'uniform', bound });
    if (bias) this.add(`${name}.bias`, [cout], { kind: 'uniform', bound });
  }

  /**
   * A linear layer with [in, out] weights; same PyTorch default bounds as `conv`. With `weightBound` (a model
   * with its own initialisation, e.g. timm's transformers) the weights draw from U(-weightBound, weightBound)
   * and the bias starts at 0.
   */
  linear(name: string, din: number, dout: number, bias = true, weightBound?: number): void {
    const bound = weightBound ?? 1 / Math.sqrt(din);
    this.add(`${name}.weight`, [din, dout], { kind: 'uniform', bound });
    if (bias) this.add(`${name}.bias`, [dout], weightBound === undefined ? { kind: 'uniform', bound } : { kind: 'const', value: 0 });
  }

  /** A free parameter tensor drawn from U(-bound, bound). */
  uniform(name: string, shape: number[], bound: number): void {
    this.add(name, shape, { kind: 'uniform', bound });
  }

  /** The affine parameters of a layer norm over the channels of each position (PyTorch nn.LayerNorm(c)). */
  channelNorm(name: string, c: number): void {
    this.add(`${name}.weight`, [c], { kind: 'const', value: 1 });
    this.add(`${name}.bias`, [c], { kind: 'const', value: 0 });
  }

  /** The affine parameters of a normalisation layer over a [h, w, c] map (and running stats for batch norm). */
  norm(name: string, kind: NormKind, c: number, h: number, w: number): void {
    if (kind === 'none') return;
    if (kind === 'group' && c % GROUP_NORM_GROUPS !== 0) {
      throw new Error(`group norm needs channels divisible by ${GROUP_NORM_GROUPS}, layer ${name} has ${c}`);
    }
    const shape = kind === 'layer' ? [h, w, c] : [c];
    this.add(`${name}.weight`, shape, { kind: 'const', value: 1 });
    this.add(`${name}.bias`, shape, { kind: 'const', value: 0 });
    if (kind === 'batch') {
      this.bnSpecs.push({ name: `${name}.running_mean`, shape: [c] }, { name: `${name}.running_var`, shape: [c] });
    }
  }

  paramCount(): number {
    return this.specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  }

  /**
   * Every parameter draws from its own child stream named after it, so adding or reordering layers
   * never changes the values of the others.
   */
  init(rng: Rng): Params {
    const out: Params = {};
    for (const s of this.specs) {
      const size = s.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      if (s.init.kind === 'const') {
        values.fill(s.init.value);
      } else {
        fillUniform(rng.child(s.name), values, s.init.bound);
      }
      out[s.name] = tf.tensor(values, s.shape, 'float32');
    }
    return out;
  }

  initBnState(): BnState {
    const out: BnState = {};
    for (const s of this.bnSpecs) {
      out[s.name] = s.name.endsWith('running_var') ? tf.ones(s.shape) : tf.zeros(s.shape);
    }
    return out;
  }
}

/**
 * values[i] ~ U(-bound, bound). seedrandom's default generator manages ~7M draws/s, i.e. 1.5 s for
 * ResNet-18's 11M weights, paid again by every fresh evaluation model and every random network DM/DC
 * draw; sfc32 (seeded from `rng`) is about 20x faster and passes PractRand.
 */
function fillUniform(rng: Rng, values: Float32Array, bound: number): void {
  let a = rng.seed() | 0;
  let b = rng.seed() | 0;
  let c = rng.seed() | 0;
  let d = 1;
  for (let i = 0; i < 12; i++) sfc();
  function sfc(): number {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  for (let i = 0; i < values.length; i++) values[i] = (2 * sfc() - 1) * bound;
}

function need(params: Params, name: string): tf.Tensor {
  const t = params[name];
  if (!t) throw new Error(`missing parameter ${name}`);
  return t;
}

export function conv2d(params: Params, name: string, x: tf.Tensor4D, stride: number, pad: number): tf.Tensor4D {
  const w = need(params, `${name}.weight`) as tf.Tensor4D;
  const y = tf.conv2d(x, w, stride, pad);
  const b = params[`${name}.bias`];
  return b ? (tf.add(y, b) as tf.Tensor4D) : y;
}

export function linear(params: Params, name: string, x: tf.Tensor2D): tf.Tensor2D {
  const y = tf.matMul(x, need(params, `${name}.weight`) as tf.Tensor2D) as tf.Tensor2D;
  const b = params[`${name}.bias`];
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

/** y = x * scale + shift with per-sample / per-channel scale and shift: two full-size ops instead of four. */
function affineNormalize(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const scale = tf.mul(tf.rsqrt(tf.add(variance, NORM_EPS)), gamma);
  const shift = tf.sub(beta, tf.mul(mean, scale));
  return tf.add(tf.mul(x, scale), shift);
}

/** Normalisation layer `name` of the given kind over NHWC x (PyTorch semantics, eps 1e-5, biased variance). */
export function normalize(kind: NormKind, params: Params, name: string, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D {
  if (kind === 'none') return x;
  const gamma = need(params, `${name}.weight`);
  const beta = need(params, `${name}.bias`);
  const [n, h, w, c] = x.shape;
  switch (kind) {
    case 'instance': {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      return affineNormalize(x, mean, variance, gamma, beta) as tf.Tensor4D;
    }
    case 'layer': {
      const { mean, variance } = tf.moments(x, [1, 2, 3], true);
      return affineNormalize(x, mean, variance, gamma, beta) as tf.Tensor4D;
    }
    case 'group': {
      const g = GROUP_NORM_GROUPS;
      const xg = tf.reshape(x, [n, h, w, g, c / g]);
      const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
      const xn = tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, NORM_EPS)));
      return tf.add(tf.mul(tf.reshape(xn, [n, h, w, c]), gamma), beta) as tf.Tensor4D;
    }
    case 'batch': {
      if (opts.training) {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        if (opts.bnStats) {
          opts.bnStats[name] = { mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: n * h * w };
        }
        return affineNormalize(x, mean, variance, gamma, beta) as tf.Tensor4D;
      }
      const rm = opts.bnState?.[`${name}.running_mean`];
      const rv = opts.bnState?.[`${name}.running_var`];
      if (!rm || !rv) {
        throw new Error(`batch norm layer ${name} in evaluation mode needs running statistics (ForwardOptions.bnState)`);
      }
      if (opts.bnStats) {
        // Recorded only, never used to normalise: SRe2L matches the input statistics of a frozen teacher.
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        opts.bnStats[name] = { mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: n * h * w };
      }
      return affineNormalize(x, rm, rv, gamma, beta) as tf.Tensor4D;
    }
  }
}

/** Layer norm over the channels of every position (PyTorch nn.LayerNorm(C) on [..., C]), parameters from `ParamRegistry.channelNorm`. */
export function channelLayerNorm(params: Params, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, -1, true);
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, NORM_EPS)));
  return tf.add<tf.Tensor4D>(tf.mul(normed, need(params, `${name}.weight`)), need(params, `${name}.bias`));
}

/** The reference's activations; leaky ReLU uses PyTorch's default slope 0.01; GELU is the exact (erf) form, PyTorch's default. */
export function activate<T extends tf.Tensor>(act: ActKind, x: T): T {
  switch (act) {
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    case 'relu':
      return tf.relu(x);
    case 'leakyrelu':
      return tf.leakyRelu(x, 0.01);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
  }
}

/** 2x2, stride 2 pooling (floor on odd sizes, like PyTorch). */
export function pool2(kind: PoolKind, x: tf.Tensor4D): tf.Tensor4D {
  if (kind === 'max') return tf.maxPool(x, 2, 2, 'valid');
  if (kind === 'avg') return tf.avgPool(x, 2, 2, 'valid');
  return x;
}

export function flatten(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(x, [n, h * w * c]);
}

export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}

/** Output size of a conv (PyTorch formula). */
export function convOut(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/**
 * New running statistics after one training batch (PyTorch: the running variance is updated with the
 * unbiased batch variance, the layer normalises with the biased one).
 */
export function updateBnState(state: BnState, stats: Record<string, { mean: tf.Tensor; variance: tf.Tensor; count: number }>, momentum = BN_MOMENTUM): BnState {
  return tf.tidy(() => {
    const next: BnState = {};
    for (const [key, value] of Object.entries(state)) {
      const layer = key.replace(/\.running_(mean|var)$/, '');
      const s = stats[layer];
      if (!s) {
        next[key] = tf.clone(value);
        continue;
      }
      const batch = key.endsWith('running_mean') ? s.mean : tf.mul(s.variance, s.count / Math.max(1, s.count - 1));
      next[key] = tf.add(tf.mul(value, 1 - momentum), tf.mul(batch, momentum));
    }
    return next;
  });
}
