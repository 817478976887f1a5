import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { activate } from '../src/nn/layers.js';
import { type SwinBlockShape, swinBlock } from '../src/nn/models/swin.js';
import type { Params } from '../src/nn/types.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { maxAbsDiff, setupBackend } from './nn-backend.js';

before(async () => {
  await setupBackend();
});

/**
 * erf in float64: its Taylor series below |x| = 3 (terms stay below 1e4: about 12 correct digits), above it
 * 1 - erfc(x) by the continued fraction erfc(x) = exp(-x^2) / (sqrt(pi) (x + (1/2) / (x + 1 / (x + (3/2) / ...)))).
 */
function erf64(x: number): number {
  if (Math.abs(x) >= 3) {
    const a = Math.abs(x);
    let k = a;
    for (let n = 80; n >= 1; n--) k = a + n / 2 / k;
    return Math.sign(x) * (1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * k));
  }
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const gelu64 = (x: number): number => 0.5 * x * (1 + erf64(x / Math.SQRT2));

function normals(seed: string, n: number, std: number): Float64Array {
  const rng = createRng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rng.next(), 1e-12);
    out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return out;
}

test('gelu is the exact erf form: against a float64 series on fresh random inputs', () => {
  const xs = normals('gelu-inputs', 500, 2);
  const got = tf.tidy(() => activate('gelu', tf.tensor1d(Float32Array.from(xs))).dataSync());
  const want = xs.map(gelu64);
  assert.ok(maxAbsDiff(got, want) < 2e-6, `max difference ${maxAbsDiff(got, want)}`);
});

interface BlockCase {
  h: number;
  w: number;
  c: number;
  shape: SwinBlockShape;
}

/** Random block parameters, larger than the model's initialisation so that attention, bias and mask all matter. */
function blockParams(seed: string, { c, shape }: BlockCase): Record<string, { shape: number[]; values: Float64Array }> {
  const specs: [string, number[], number][] = [
    ['norm1.weight', [c], 0.3],
    ['norm1.bias', [c], 0.3],
    ['attn.qkv.weight', [c, 3 * c], 0.25],
    ['attn.qkv.bias', [3 * c], 0.3],
    ['attn.relative_position_bias_table', [(2 * shape.window - 1) ** 2, shape.heads], 1.0],
    ['attn.proj.weight', [c, c], 0.2],
    ['attn.proj.bias', [c], 0.2],
    ['norm2.weight', [c], 0.3],
    ['norm2.bias', [c], 0.3],
    ['mlp.fc1.weight', [c, 4 * c], 0.2],
    ['mlp.fc1.bias', [4 * c], 0.2],
    ['mlp.fc2.weight', [4 * c, c], 0.1],
    ['mlp.fc2.bias', [c], 0.1],
  ];
  const out: Record<string, { shape: number[]; values: Float64Array }> = {};
  for (const [name, dims, std] of specs) {
    const values = normals(`${seed}/${name}`, dims.reduce((a, b) => a * b, 1), std);
    if (name.endsWith('norm1.weight') || name.endsWith('norm2.weight')) for (let i = 0; i < values.length; i++) values[i] += 1;
    out[name] = { shape: dims, values };
  }
  return out;
}

/**
 * One Swin block in float64, written per token with no windows, rolls or masks: token i attends to the tokens
 * that share its window and its region in the shifted frame (the frame where position p sits at p - shift).
 */
function blockReference(x: Float64Array, p: Record<string, { values: Float64Array }>, { h, w, c, shape }: BlockCase): Float64Array {
  const { window: win, shift, heads } = shape;
  const d = c / heads;
  const at = (name: string): Float64Array => p[name].values;
  const layerNorm = (v: Float64Array, g: Float64Array, b: Float64Array): Float64Array => {
    const mean = v.reduce((s, a) => s + a, 0) / v.length;
    const variance = v.reduce((s, a) => s + (a - mean) ** 2, 0) / v.length;
    return v.map((a, k) => ((a - mean) / Math.sqrt(variance + 1e-5)) * g[k] + b[k]);
  };
  const dense = (v: Float64Array, wt: Float64Array, bias: Float64Array, dout: number): Float64Array => {
    const out = Float64Array.from(bias);
    for (let i = 0; i < v.length; i++) for (let o = 0; o < dout; o++) out[o] += v[i] * wt[i * dout + o];
    return out;
  };
  const n = h * w;
  const token = (i: number): Float64Array => x.subarray(i * c, (i + 1) * c);
  const qkv = Array.from({ length: n }, (_, i) => dense(layerNorm(token(i), at('norm1.weight'), at('norm1.bias')), at('attn.qkv.weight'), at('attn.qkv.bias'), 3 * c));
  const band = (v: number, size: number): number => (v < size - win ? 0 : v < size - shift ? 1 : 2);
  const frame = (i: number): { y: number; x: number; key: string } => {
    const y = (((Math.floor(i / w) - shift) % h) + h) % h;
    const xx = ((((i % w) - shift) % w) + w) % w;
    const region = shift > 0 ? 3 * band(y, h) + band(xx, w) : 0;
    return { y, x: xx, key: `${Math.floor(y / win)},${Math.floor(xx / win)},${region}` };
  };
  const frames = Array.from({ length: n }, (_, i) => frame(i));
  const table = at('attn.relative_position_bias_table');
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const partners = frames.flatMap((f, j) => (f.key === frames[i].key ? [j] : []));
    const attended = new Float64Array(c);
    for (let hd = 0; hd < heads; hd++) {
      const logits = partners.map((j) => {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += qkv[i][hd * d + k] * qkv[j][c + hd * d + k];
        const dy = (frames[i].y % win) - (frames[j].y % win);
        const dx = (frames[i].x % win) - (frames[j].x % win);
        return dot / Math.sqrt(d) + table[((dy + win - 1) * (2 * win - 1) + dx + win - 1) * heads + hd];
      });
      const top = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - top));
      const total = e.reduce((s, a) => s + a, 0);
      partners.forEach((j, m) => {
        for (let k = 0; k < d; k++) attended[hd * d + k] += (e[m] / total) * qkv[j][2 * c + hd * d + k];
      });
    }
    const y = dense(attended, at('attn.proj.weight'), at('attn.proj.bias'), c).map((a, k) => a + token(i)[k]);
    const hidden = dense(layerNorm(y, at('norm2.weight'), at('norm2.bias')), at('mlp.fc1.weight'), at('mlp.fc1.bias'), 4 * c).map(gelu64);
    const z = dense(hidden, at('mlp.fc2.weight'), at('mlp.fc2.bias'), c);
    for (let k = 0; k < c; k++) out[i * c + k] = y[k] + z[k];
  }
  return out;
}

const CASES: [string, BlockCase][] = [
  ['unshifted', { h: 8, w: 8, c: 64, shape: { window: 4, shift: 0, heads: 2 } }],
  ['shifted', { h: 8, w: 8, c: 64, shape: { window: 4, shift: 2, heads: 2 } }],
  ['shifted, 3 x 2 windows', { h: 12, w: 8, c: 32, shape: { window: 4, shift: 2, heads: 1 } }],
];

for (const [label, bc] of CASES) {
  test(`a Swin block (${label}) against a float64 per-token computation, value and input gradient`, () => {
    const raw = blockParams(label, bc);
    const x64 = normals(`${label}/x`, bc.h * bc.w * bc.c, 1);
    const want = blockReference(x64, raw, bc);
    const params: Params = {};
    for (const [name, { shape, values }] of Object.entries(raw)) params[`b.${name}`] = tf.tensor(Float32Array.from(values), shape);
    const x = tf.tensor4d(Float32Array.from(x64), [1, bc.h, bc.w, bc.c]);
    const got = tf.tidy(() => swinBlock(params, 'b', x, bc.shape, 'gelu').dataSync());
    const scale = Math.max(...want.map(Math.abs));
    assert.ok(maxAbsDiff(got, want) < 1e-4 * scale, `max difference ${maxAbsDiff(got, want)} (scale ${scale})`);

    // d/dx of sum(r * block(x)) against central differences of the float64 reference at random coordinates.
    const r64 = normals(`${label}/r`, want.length, 1);
    const r = tf.tensor4d(Float32Array.from(r64), [1, bc.h, bc.w, bc.c]);
    const grad = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(swinBlock(params, 'b', v as tf.Tensor4D, bc.shape, 'gelu'), r)))(x).dataSync());
    const objective = (v: Float64Array): number => blockReference(v, raw, bc).reduce((s, a, k) => s + a * r64[k], 0);
    const rng = createRng(`${label}/coords`);
    for (let t = 0; t < 6; t++) {
      const k = Math.floor(rng.next() * x64.length);
      const eps = 1e-5;
      const plus = Float64Array.from(x64);
      const minus = Float64Array.from(x64);
      plus[k] += eps;
      minus[k] -= eps;
      const fd = (objective(plus) - objective(minus)) / (2 * eps);
      assert.ok(Math.abs(grad[k] - fd) < 2e-3 * Math.max(1, Math.abs(fd)), `coordinate ${k}: analytic ${grad[k]}, finite differences ${fd}`);
    }
    tf.dispose([x, r, ...Object.values(params)]);
  });
}

test('swin: every parameter gets a gradient; sizes that do not split into windows are refused', () => {
  const input = { channels: 3, height: 32, width: 32, classes: 10 };
  const model = buildModel({ name: 'swin', width: 32 }, input);
  const params = model.init(createRng('swin-grads'));
  const names = Object.keys(params);
  tf.tidy(() => {
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
    const loss = (...ps: tf.Tensor[]): tf.Scalar => {
      const p = Object.fromEntries(names.map((n, i) => [n, ps[i]]));
      return tf.losses.softmaxCrossEntropy(labels, model.forward(p, x, { training: true })) as tf.Scalar;
    };
    const grads = tf.grads(loss)(names.map((n) => params[n]));
    grads.forEach((g, i) => {
      const v = g.dataSync();
      assert.ok(v.every(Number.isFinite), `${names[i]}: finite`);
      assert.ok(v.some((a) => a !== 0), `${names[i]}: some gradient reaches it`);
    });
  });
  tf.dispose(Object.values(params));
  // Tiny-ImageNet's 64x64: maps of 32, 16, 8 and 4 tokens, all in 4x4 windows.
  assert.equal(buildModel('swin', { channels: 3, height: 64, width: 64, classes: 200 }).paramCount() > 0, true);
  assert.throws(() => buildModel('swin', { channels: 3, height: 48, width: 48, classes: 10 }), /does not split into 4x4 windows/);
  assert.throws(() => buildModel({ name: 'swin', width: 48 }, input), /multiple of 32/);
});
