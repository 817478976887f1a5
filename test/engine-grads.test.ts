/**
 * First- and second-order gradients on cpu and wasm against finite
 * differences computed in float64 (engine-ref.ts). Second-order checks use
 * tanh: around ReLU kinks finite differences are noise (REFERENCE section 5);
 * ReLU/max-pool paths are checked cpu-vs-wasm and by adjoint identities.
 * Error measure: relErr (engine-util.ts), max |a - b| / max |b|.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { logSoftmax, softmaxCrossEntropy } from '../src/engine/index.js';
import * as R from './engine-ref.js';
import { flat, initTestBackends, randomValues, relErr, runOn, sizeOf } from './engine-util.js';

const BACKENDS = ['cpu', 'wasm'];

before(async () => {
  await initTestBackends();
});

/** Elementwise ops: tf op, float64 value, domain. */
const UNARY: Array<{ name: string; tf: (x: tf.Tensor) => tf.Tensor; f: (x: number) => number; lo: number; hi: number; order: 1 | 2 }> = [
  { name: 'exp', tf: tf.exp, f: Math.exp, lo: -2, hi: 2, order: 2 },
  { name: 'tanh', tf: tf.tanh, f: Math.tanh, lo: -2, hi: 2, order: 2 },
  { name: 'sigmoid', tf: tf.sigmoid, f: (x) => 1 / (1 + Math.exp(-x)), lo: -3, hi: 3, order: 2 },
  { name: 'softplus', tf: tf.softplus, f: (x) => Math.log1p(Math.exp(x)), lo: -3, hi: 3, order: 2 },
  { name: 'elu', tf: tf.elu, f: (x) => (x > 0 ? x : Math.expm1(x)), lo: -2, hi: -0.1, order: 2 },
  { name: 'selu', tf: tf.selu, f: (x) => (x > 0 ? 1.0507009873554805 * x : 1.7580993408473768 * Math.expm1(x)), lo: -2, hi: -0.1, order: 2 },
  { name: 'log', tf: tf.log, f: Math.log, lo: 0.5, hi: 3, order: 2 },
  { name: 'log1p', tf: tf.log1p, f: Math.log1p, lo: 0, hi: 2, order: 2 },
  { name: 'expm1', tf: tf.expm1, f: Math.expm1, lo: -1, hi: 1, order: 2 },
  { name: 'sqrt', tf: tf.sqrt, f: Math.sqrt, lo: 0.5, hi: 3, order: 2 },
  { name: 'rsqrt', tf: tf.rsqrt, f: (x) => 1 / Math.sqrt(x), lo: 0.5, hi: 3, order: 2 },
  { name: 'square', tf: tf.square, f: (x) => x * x, lo: -2, hi: 2, order: 2 },
  { name: 'reciprocal', tf: tf.reciprocal, f: (x) => 1 / x, lo: 0.5, hi: 2, order: 2 },
  { name: 'sin', tf: tf.sin, f: Math.sin, lo: -2, hi: 2, order: 2 },
  { name: 'cos', tf: tf.cos, f: Math.cos, lo: -2, hi: 2, order: 2 },
  { name: 'atan', tf: tf.atan, f: Math.atan, lo: -2, hi: 2, order: 2 },
  { name: 'relu', tf: tf.relu, f: (x) => Math.max(0, x), lo: 0.1, hi: 2, order: 1 },
  { name: 'leakyRelu', tf: (x) => tf.leakyRelu(x, 0.2), f: (x) => (x > 0 ? x : 0.2 * x), lo: -2, hi: -0.1, order: 1 },
  { name: 'abs', tf: tf.abs, f: Math.abs, lo: -2, hi: -0.1, order: 1 },
];

function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  return randomValues(n, seed).map((v) => lo + ((v + 1) / 2) * (hi - lo));
}

describe('elementwise first and second derivatives vs float64 differences', () => {
  for (const op of UNARY) {
    test(op.name, () => {
      const xs = uniform(12, op.lo, op.hi, op.name.length * 31 + 7);
      const h = 1e-4;
      const d1 = Array.from(xs, (x) => (op.f(x + h) - op.f(x - h)) / (2 * h));
      const d2 = Array.from(xs, (x) => (op.f(x + h) - 2 * op.f(x) + op.f(x - h)) / (h * h));
      for (const b of BACKENDS) {
        const [g1, g2] = runOn(b, () => {
          const x = tf.tensor(xs);
          const first = tf.grad((t: tf.Tensor) => tf.sum(op.tf(t)))(x);
          const second = tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.sum(op.tf(u)))(t)))(x);
          return [first, second];
        });
        assert.ok(relErr(g1, d1) < 1e-4, `${op.name} first derivative on ${b}: ${relErr(g1, d1)}`);
        if (op.order === 2) assert.ok(relErr(g2, d2) < 1e-3, `${op.name} second derivative on ${b}: ${relErr(g2, d2)}`);
      }
    });
  }

  test('pow: second derivative in the exponent (the saved-output case)', () => {
    const a = uniform(8, 0.5, 2, 3);
    const b = uniform(8, -1.5, 1.5, 4);
    const h = 1e-4;
    const f = (x: number, y: number): number => x ** y;
    const dbb = Array.from(a, (x, i) => (f(x, b[i] + h) - 2 * f(x, b[i]) + f(x, b[i] - h)) / (h * h));
    const daa = Array.from(a, (x, i) => (f(x + h, b[i]) - 2 * f(x, b[i]) + f(x - h, b[i])) / (h * h));
    for (const be of BACKENDS) {
      const [gbb, gaa] = runOn(be, () => {
        const ta = tf.tensor(a);
        const tb = tf.tensor(b);
        const inner = (x: tf.Tensor, y: tf.Tensor): tf.Tensor[] => tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.pow(p, q)))([x, y]);
        return [
          tf.grad((q: tf.Tensor) => tf.sum(inner(ta, q)[1]))(tb),
          tf.grad((p: tf.Tensor) => tf.sum(inner(p, tb)[0]))(ta),
        ];
      });
      assert.ok(relErr(gbb, dbb) < 1e-3, `d2/db2 on ${be}: ${relErr(gbb, dbb)}`);
      assert.ok(relErr(gaa, daa) < 1e-3, `d2/da2 on ${be}: ${relErr(gaa, daa)}`);
    }
  });
});

describe('REFERENCE section 5 example', () => {
  test('L(x) = ||d/db sum(tanh(tanh(x) b)) - G||^2', () => {
    const x0 = [0.3, -0.7, 1.1, 0.2];
    const b0 = [0.5, -1.2, 0.8, 1.5];
    const G = [0.1, 0.2, -0.3, 0.05];
    // d/db_i = x-term: tanh(x_i) * (1 - tanh(tanh(x_i) b_i)^2)
    const L = (x: ArrayLike<number>): number => {
      let s = 0;
      for (let i = 0; i < x0.length; i++) {
        const t = Math.tanh(x[i]);
        const g = t * (1 - Math.tanh(t * b0[i]) ** 2);
        s += (g - G[i]) ** 2;
      }
      return s;
    };
    const xs = Float64Array.from(x0);
    const fd = R.finiteDifferences(() => L(xs), xs, 1e-5);
    for (const be of BACKENDS) {
      const [an] = runOn(be, () =>
        tf.grad((x: tf.Tensor) => {
          const gb = tf.grad((b: tf.Tensor) => tf.sum(tf.tanh(tf.mul(tf.tanh(x), b))))(tf.tensor(b0));
          return tf.sum(tf.square(tf.sub(gb, tf.tensor(G))));
        })(tf.tensor(x0)),
      );
      assert.ok(relErr(an, fd) < 1e-4, `${be}: ${Array.from(an)} vs ${Array.from(fd)}`);
    }
  });
});

describe('softmax, logSoftmax and cross-entropy to second order', () => {
  const B = 3;
  const C = 5;
  const logits0 = randomValues(B * C, 11);
  const w0 = randomValues(C * C, 12);
  const labels = Array.from({ length: B * C }, (_, i) => (i % C === (Math.floor(i / C) * 2) % C ? 1 : 0));
  const G0 = randomValues(C * C, 13);

  // L(z) = || d/dW CE(labels, z W) - G ||^2, differentiated with respect to z.
  function reference(z: Float64Array): number {
    const zt = R.leaf(z, [B, C]);
    const wt = R.leaf(w0, [C, C]);
    const [gw] = R.gradients(R.softmaxCrossEntropy(R.leaf(labels, [B, C]), R.matMul(zt, wt)), [wt]);
    return gw.reduce((s, v, i) => s + (v - G0[i]) ** 2, 0);
  }
  const z = Float64Array.from(logits0);
  const fd = R.finiteDifferences(() => reference(z), z, 1e-5);

  const variants: Array<[string, (y: tf.Tensor, l: tf.Tensor) => tf.Tensor]> = [
    ['engine softmaxCrossEntropy', (l, y) => softmaxCrossEntropy(y, l)],
    ['engine logSoftmax', (l, y) => tf.neg(tf.mean(tf.sum(tf.mul(y, logSoftmax(l)), -1)))],
    ['tf.softmax + log', (l, y) => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.softmax(l))), -1)))],
  ];
  for (const [name, ce] of variants) {
    test(name, () => {
      for (const be of BACKENDS) {
        const [an] = runOn(be, () =>
          tf.grad((zz: tf.Tensor) => {
            const y = tf.tensor(labels, [B, C]);
            const gw = tf.grad((w: tf.Tensor) => ce(tf.matMul(zz, w), y))(tf.tensor(w0, [C, C]));
            return tf.sum(tf.square(tf.sub(gw, tf.tensor(G0, [C, C]))));
          })(tf.tensor(logits0, [B, C])),
        );
        assert.ok(relErr(an, fd) < 1e-3, `${name} on ${be}: relErr ${relErr(an, fd)}`);
      }
    });
  }
});

type Quad = [number, number, number, number];

describe('second order through convolutions', () => {
  // L = || d/dW2 sum(conv(tanh(conv(x, W1)), W2)) - G ||^2, gradient wrt x and W1.
  const cases: Array<{ name: string; x: Quad; w1: Quad; w2: Quad; s1: number; p1: number; s2: number; p2: number }> = [
    { name: '3x3 pad 1', x: [2, 6, 6, 2], w1: [3, 3, 2, 3], w2: [3, 3, 3, 2], s1: 1, p1: 1, s2: 1, p2: 1 },
    { name: '3x3 pad 3 (28x28 first layer style) then valid', x: [1, 5, 5, 1], w1: [3, 3, 1, 3], w2: [3, 3, 3, 2], s1: 1, p1: 3, s2: 1, p2: 0 },
    { name: 'stride 2, 5x5 and 1x1', x: [2, 9, 9, 2], w1: [5, 5, 2, 3], w2: [1, 1, 3, 4], s1: 2, p1: 2, s2: 2, p2: 0 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const xv = randomValues(sizeOf(c.x), 21);
      const w1v = randomValues(sizeOf(c.w1), 22).map((v) => v * 0.7);
      const w2v = randomValues(sizeOf(c.w2), 23);
      const gv = randomValues(sizeOf(c.w2), 24);
      const pad = (p: number): [number, number, number, number] => [p, p, p, p];
      function L(x: Float64Array, w1: Float64Array): number {
        const xt = R.leaf(x, c.x);
        const h = R.tanh(R.conv2d(xt, R.leaf(w1, c.w1), c.s1, pad(c.p1)));
        const w2t = R.leaf(w2v, c.w2);
        const [gw2] = R.gradients(R.sumAll(R.conv2d(h, w2t, c.s2, pad(c.p2))), [w2t]);
        return gw2.reduce((s, v, i) => s + (v - gv[i]) ** 2, 0);
      }
      const x = Float64Array.from(xv);
      const w1 = Float64Array.from(w1v);
      const fd = flat([R.finiteDifferences(() => L(x, w1), x, 1e-5), R.finiteDifferences(() => L(x, w1), w1, 1e-5)]);
      const tfPad = (p: number): tf.backend_util.ExplicitPadding => [[0, 0], [p, p], [p, p], [0, 0]];
      for (const be of BACKENDS) {
        const an = flat(
          runOn(be, () =>
            tf.grads((xx: tf.Tensor, ww1: tf.Tensor) => {
              const h = tf.tanh(tf.conv2d(xx as tf.Tensor4D, ww1 as tf.Tensor4D, c.s1, tfPad(c.p1)));
              const gw2 = tf.grad((w2: tf.Tensor) => tf.sum(tf.conv2d(h, w2 as tf.Tensor4D, c.s2, tfPad(c.p2))))(tf.tensor(w2v, c.w2));
              return tf.sum(tf.square(tf.sub(gw2, tf.tensor(gv, c.w2))));
            })([tf.tensor(xv, c.x), tf.tensor(w1v, c.w1)]),
          ),
        );
        assert.ok(relErr(an, fd) < 1e-3, `${c.name} on ${be}: relErr ${relErr(an, fd)}`);
      }
    });
  }
});

describe('gradient matching through a small ConvNet (conv + instance norm + tanh + avgpool + matmul + CE)', () => {
  // DC-style: L = sum over parameters of || dCE/dtheta - G ||^2, differentiated
  // with respect to the images and the first conv's weights.
  const B = 2;
  const X: Quad = [B, 8, 8, 2];
  const W1: Quad = [3, 3, 2, 4];
  const W2: Quad = [3, 3, 4, 4];
  const FC = [2 * 2 * 4, 3];
  const classes = 3;
  const eps = 1e-5;
  const xv = randomValues(sizeOf(X), 31);
  const w1v = randomValues(sizeOf(W1), 32).map((v) => v * 0.6);
  const w2v = randomValues(sizeOf(W2), 33).map((v) => v * 0.4);
  const fcv = randomValues(sizeOf(FC), 34);
  const gamma = [1.1, 0.9, 1.2, 0.8];
  const beta = [0.1, -0.2, 0.05, 0.0];
  const labels = [1, 0, 0, 0, 0, 1];
  const targets = [randomValues(sizeOf(W1), 35), randomValues(sizeOf(W2), 36), randomValues(sizeOf(FC), 37)].map((a) =>
    a.map((v) => v * 0.05),
  );

  function refLoss(x: Float64Array, w1: Float64Array): number {
    const p1 = R.leaf(w1, W1);
    const p2 = R.leaf(w2v, W2);
    const pf = R.leaf(fcv, FC);
    const g = R.leaf(gamma, [4]);
    const b = R.leaf(beta, [4]);
    let h = R.conv2d(R.leaf(x, X), p1, 1, [1, 1, 1, 1]);
    h = R.avgPool(R.tanh(R.instanceNorm(h, g, b, eps)), 2);
    h = R.conv2d(h, p2, 1, [1, 1, 1, 1]);
    h = R.avgPool(R.tanh(R.instanceNorm(h, g, b, eps)), 2);
    const logits = R.matMul(R.reshape(h, [B, FC[0]]), pf);
    const grads = R.gradients(R.softmaxCrossEntropy(R.leaf(labels, [B, classes]), logits), [p1, p2, pf]);
    let s = 0;
    grads.forEach((gr, k) => gr.forEach((v, i) => (s += (v - targets[k][i]) ** 2)));
    return s;
  }

  function tfLoss(x: tf.Tensor, w1: tf.Tensor, act: (t: tf.Tensor) => tf.Tensor, pool: (t: tf.Tensor4D) => tf.Tensor4D): tf.Scalar {
    const g = tf.tensor(gamma);
    const b = tf.tensor(beta);
    const norm = (t: tf.Tensor4D): tf.Tensor4D => {
      const { mean, variance } = tf.moments(t, [1, 2], true);
      return tf.add(tf.mul(tf.mul(tf.sub(t, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
    };
    const params = [w1, tf.tensor(w2v, W2), tf.tensor(fcv, FC)];
    const grads = tf.grads((p1: tf.Tensor, p2: tf.Tensor, pf: tf.Tensor) => {
      let h = tf.conv2d(x as tf.Tensor4D, p1 as tf.Tensor4D, 1, 'same');
      h = pool(act(norm(h)) as tf.Tensor4D);
      h = tf.conv2d(h, p2 as tf.Tensor4D, 1, 'same');
      h = pool(act(norm(h)) as tf.Tensor4D);
      return softmaxCrossEntropy(tf.tensor(labels, [B, classes]), tf.matMul(tf.reshape(h, [B, FC[0]]), pf));
    })(params);
    return tf.addN(grads.map((gr, k) => tf.sum(tf.square(tf.sub(gr, tf.tensor(targets[k], gr.shape)))))) as tf.Scalar;
  }

  test('tanh + avgpool: cpu and wasm vs float64 finite differences', () => {
    const x = Float64Array.from(xv);
    const w1 = Float64Array.from(w1v);
    const fd = flat([R.finiteDifferences(() => refLoss(x, w1), x, 1e-5), R.finiteDifferences(() => refLoss(x, w1), w1, 1e-5)]);
    for (const be of BACKENDS) {
      const an = flat(
        runOn(be, () =>
          tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tfLoss(xx, ww, tf.tanh, (t) => tf.avgPool(t, 2, 2, 'valid')))([
            tf.tensor(xv, X),
            tf.tensor(w1v, W1),
          ]),
        ),
      );
      assert.ok(relErr(an, fd) < 1e-3, `${be}: relErr ${relErr(an, fd)}`);
    }
  });

  test('relu + maxpool: wasm agrees with cpu', () => {
    const run = (be: string): Float64Array =>
      flat(
        runOn(be, () =>
          tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tfLoss(xx, ww, tf.relu, (t) => tf.maxPool(t, 2, 2, 'valid')))([
            tf.tensor(xv, X),
            tf.tensor(w1v, W1),
          ]),
        ),
      );
    const c = run('cpu');
    const w = run('wasm');
    assert.ok(c.some((v) => v !== 0), 'gradient is identically zero');
    assert.ok(relErr(w, c) < 1e-3, `relErr ${relErr(w, c)}`);
  });
});

describe('adjoint identities of the backprop kernels: <A(u), v> = <u, A^T(v)>', () => {
  // Each backprop kernel is linear in dy; the registered gradient must be its
  // exact adjoint. With u, v random, <A(u), v> is computed directly and
  // <u, grad_u <A(u), v>> through the gradient.
  const dot = (a: tf.Tensor, b: tf.Tensor): tf.Scalar => tf.sum(tf.mul(a, b));
  const rnd = (shape: number[], seed: number): tf.Tensor => tf.tensor(randomValues(sizeOf(shape), seed), shape);
  const cases: Array<{ name: string; uShape: number[]; A: (u: tf.Tensor) => tf.Tensor }> = [
    {
      name: 'AvgPoolGrad',
      uShape: [2, 3, 3, 4],
      A: (u) => tf.engine().runKernel('AvgPoolGrad', { dy: u, input: tf.zeros([2, 6, 6, 4]) }, { filterSize: 2, strides: 2, pad: 'valid' }) as tf.Tensor,
    },
    {
      name: 'MaxPoolGrad',
      uShape: [2, 3, 3, 4],
      A: (u) => {
        const x = rnd([2, 7, 7, 4], 41);
        const y = tf.maxPool(x as tf.Tensor4D, 3, 2, 'valid');
        return tf.engine().runKernel('MaxPoolGrad', { dy: u, input: x, output: y }, { filterSize: 3, strides: 2, pad: 'valid' }) as tf.Tensor;
      },
    },
    {
      name: 'ResizeBilinearGrad alignCorners=false halfPixelCenters=true',
      uShape: [2, 9, 9, 3],
      A: (u) => tf.engine().runKernel('ResizeBilinearGrad', { dy: u, images: tf.zeros([2, 4, 4, 3]) }, { alignCorners: false, halfPixelCenters: true }) as tf.Tensor,
    },
    {
      name: 'ResizeNearestNeighborGrad alignCorners=false halfPixelCenters=true',
      uShape: [2, 9, 7, 3],
      A: (u) =>
        tf.engine().runKernel('ResizeNearestNeighborGrad', { dy: u, images: tf.zeros([2, 4, 3, 3]) }, { alignCorners: false, halfPixelCenters: true }) as tf.Tensor,
    },
    {
      name: 'ResizeBilinearGrad alignCorners=false halfPixelCenters=false',
      uShape: [2, 9, 9, 3],
      A: (u) => tf.engine().runKernel('ResizeBilinearGrad', { dy: u, images: tf.zeros([2, 4, 4, 3]) }, { alignCorners: false, halfPixelCenters: false }) as tf.Tensor,
    },
    {
      name: 'ResizeNearestNeighborGrad alignCorners=false halfPixelCenters=false',
      uShape: [2, 9, 7, 3],
      A: (u) =>
        tf.engine().runKernel('ResizeNearestNeighborGrad', { dy: u, images: tf.zeros([2, 4, 3, 3]) }, { alignCorners: false, halfPixelCenters: false }) as tf.Tensor,
    },
    {
      name: 'ResizeBilinearGrad alignCorners=true halfPixelCenters=false',
      uShape: [2, 9, 9, 3],
      A: (u) => tf.engine().runKernel('ResizeBilinearGrad', { dy: u, images: tf.zeros([2, 4, 4, 3]) }, { alignCorners: true, halfPixelCenters: false }) as tf.Tensor,
    },
    {
      name: 'ResizeNearestNeighborGrad alignCorners=true halfPixelCenters=false',
      uShape: [2, 9, 7, 3],
      A: (u) =>
        tf.engine().runKernel('ResizeNearestNeighborGrad', { dy: u, images: tf.zeros([2, 4, 3, 3]) }, { alignCorners: true, halfPixelCenters: false }) as tf.Tensor,
    },
    {
      name: 'Conv2DBackpropFilter (in dy)',
      uShape: [2, 4, 4, 5],
      A: (u) => tf.engine().runKernel('Conv2DBackpropFilter', { x: rnd([2, 8, 8, 3], 42), dy: u }, { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 5] }) as tf.Tensor,
    },
    {
      name: 'Conv2DBackpropFilter (in x)',
      uShape: [2, 8, 8, 3],
      A: (u) => tf.engine().runKernel('Conv2DBackpropFilter', { x: u, dy: rnd([2, 8, 8, 5], 43) }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 5] }) as tf.Tensor,
    },
    {
      name: 'Conv2DBackpropInput (in dy)',
      uShape: [2, 4, 4, 5],
      A: (u) => tf.conv2dTranspose(u as tf.Tensor4D, rnd([3, 3, 3, 5], 44) as tf.Tensor4D, [2, 8, 8, 3], 2, 'same'),
    },
  ];
  // The forward resizes too: their gradient kernels must be their adjoints
  // (tfjs's ignore halfPixelCenters; the engine replaces them).
  for (const [ac, hp] of [[false, true], [false, false], [true, false]] as const) {
    cases.push({
      name: `resizeBilinear alignCorners=${ac} halfPixelCenters=${hp}`,
      uShape: [2, 4, 5, 3],
      A: (u) => tf.image.resizeBilinear(u as tf.Tensor4D, [28, 11], ac, hp),
    });
    cases.push({
      name: `resizeNearestNeighbor alignCorners=${ac} halfPixelCenters=${hp}`,
      uShape: [2, 4, 5, 3],
      A: (u) => tf.image.resizeNearestNeighbor(u as tf.Tensor4D, [28, 11], ac, hp),
    });
  }
  for (const c of cases) {
    test(c.name, () => {
      for (const be of BACKENDS) {
        const [lhs, rhs] = runOn(be, () => {
          const u = rnd(c.uShape, 51);
          const Au = c.A(u);
          const v = rnd(Au.shape, 52);
          const g = tf.grad((t: tf.Tensor) => dot(c.A(t), v))(u);
          return [dot(Au, v), dot(u, g)];
        });
        assert.ok(Math.abs(lhs[0]) > 1e-3, `${c.name}: degenerate test`);
        assert.ok(Math.abs(lhs[0] - rhs[0]) < 1e-4 * Math.max(1, Math.abs(lhs[0])), `${c.name} on ${be}: ${lhs[0]} vs ${rhs[0]}`);
      }
    });
  }
});
