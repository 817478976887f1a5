/**
 * Every wasm kernel we register against the cpu backend on fresh random
 * inputs of several shapes. Tolerance: relErr (see engine-util.ts) < 1e-4.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel, replacedKernels } from '../src/engine/index.js';
import { CHUNK_POSITIONS, conv2dBackpropFilterNHWC } from '../src/engine/kernels/conv2d_backprop_filter.js';
import { conv2dBackpropInputSimd, conv2dBackpropInputXnnpack } from '../src/engine/kernels/conv2d_backprop_input.js';
import { initTestBackends, randomValues, relErr, runOn, sizeOf } from './engine-util.js';

const TOL = 1e-4;
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

before(async () => {
  await initTestBackends();
});

function agree(name: string, fn: () => tf.Tensor | tf.Tensor[], tol = TOL): void {
  const c = runOn('cpu', fn);
  const w = runOn('wasm', fn);
  assert.equal(w.length, c.length, `${name}: output count`);
  c.forEach((ref, i) => {
    const e = relErr(w[i], ref);
    assert.ok(e < tol, `${name}: output ${i} relErr ${e.toExponential(2)} >= ${tol}`);
  });
}

let seed = 1;
const input = (shape: number[]): tf.Tensor => tf.tensor(randomValues(sizeOf(shape), seed++), shape);

interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  co: number;
  stride: number;
  pad: Pad;
}

// The model zoo's convolutions: 3x3 pad 1 and the 28x28 first layer's pad 3,
// 'same'/'valid', 5x5 (LeNet, AlexNet), 3x3 stride 2 and 1x1 stride 2
// (ResNet-18 downsampling and shortcuts), asymmetric explicit padding.
const convCases: ConvCase[] = [
  { x: [3, 28, 28, 1], k: [3, 3], co: 8, stride: 1, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  { x: [2, 16, 16, 12], k: [3, 3], co: 10, stride: 1, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  { x: [2, 9, 9, 20], k: [3, 3], co: 17, stride: 1, pad: 'same' },
  { x: [2, 12, 12, 3], k: [5, 5], co: 6, stride: 1, pad: 'valid' },
  { x: [2, 14, 14, 18], k: [5, 5], co: 4, stride: 1, pad: 2 },
  { x: [2, 16, 16, 8], k: [3, 3], co: 16, stride: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  { x: [2, 15, 15, 16], k: [3, 3], co: 8, stride: 2, pad: 'same' },
  { x: [2, 16, 16, 16], k: [1, 1], co: 24, stride: 2, pad: 'valid' },
  { x: [1, 11, 13, 5], k: [3, 2], co: 7, stride: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { x: [2, 32, 32, 3], k: [3, 3], co: 8, stride: 1, pad: 1 },
];

const label = (c: ConvCase): string => `x=${c.x} k=${c.k} co=${c.co} s=${c.stride} pad=${JSON.stringify(c.pad)}`;

function outShape(c: ConvCase): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(c.x, [...c.k, c.x[3], c.co], c.stride, 1, c.pad);
  return [c.x[0], info.outHeight, info.outWidth, c.co];
}

describe('Conv2DBackpropFilter (wasm) vs cpu', () => {
  for (const c of convCases) {
    test(label(c), () => {
      const x = input(c.x);
      const dy = input(outShape(c));
      const filterShape: [number, number, number, number] = [...c.k, c.x[3], c.co];
      agree(label(c), () =>
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
          strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      );
      tf.dispose([x, dy]);
    });
  }

  // The SIMD kernel's own edges: position counts that are not a multiple of its chunk (one short chunk,
  // many chunks with a remainder), channel counts around its 4 x 8 tile (padding rows and columns), a
  // ConvNet-3 layer-2 shape at full width, and a filter larger than the input (taps with no valid column).
  const simdCases: ConvCase[] = [
    { x: [1, 3, 5, 4], k: [3, 3], co: 8, stride: 1, pad: 1 },
    { x: [3, 13, 11, 7], k: [3, 3], co: 9, stride: 1, pad: 1 },
    { x: [2, 16, 16, 128], k: [3, 3], co: 128, stride: 1, pad: 1 },
    { x: [2, 10, 10, 33], k: [3, 3], co: 15, stride: 2, pad: 'same' },
    { x: [2, 3, 3, 2], k: [5, 5], co: 3, stride: 1, pad: 2 },
  ];
  for (const c of simdCases) {
    test(`SIMD kernel edges: ${label(c)}`, () => {
      const x = input(c.x);
      const dy = input(outShape(c));
      agree(label(c), () =>
        tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
          strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: [...c.k, c.x[3], c.co],
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      );
      tf.dispose([x, dy]);
    });
  }

  test('the SIMD kernels refuse another backend and other dtypes with a clear message', () => {
    const x = input([1, 4, 4, 2]);
    const dy = input([1, 4, 4, 3]);
    assert.throws(() => runOn('cpu', () => conv2dBackpropFilterNHWC(x as tf.Tensor4D, dy as tf.Tensor4D, [3, 3, 2, 3], 1, 'same')), /wasm backend only/);
    assert.throws(
      () => runOn('wasm', () => conv2dBackpropFilterNHWC(tf.cast(x, 'int32') as tf.Tensor4D, dy as tf.Tensor4D, [3, 3, 2, 3], 1, 'same')),
      /float32 tensors, got int32/,
    );
    tf.dispose([x, dy]);
  });

  test('the edge cases cover a short chunk and several chunks with a remainder', () => {
    const positions = simdCases.map((c) => outShape(c).slice(0, 3).reduce((p, d) => p * d, 1));
    assert.ok(positions.some((p) => p < CHUNK_POSITIONS));
    assert.ok(positions.some((p) => p > 2 * CHUNK_POSITIONS && p % CHUNK_POSITIONS !== 0));
  });

  test('the SIMD kernel writes its output only: tensors allocated around it keep their bytes', () => {
    runOn('wasm', () => {
      const before = input([4096]);
      const x = input([2, 7, 7, 6]);
      const dy = input([2, 7, 7, 10]);
      const after = input([4096]);
      const snapshot = [before.dataSync().slice(), x.dataSync().slice(), dy.dataSync().slice(), after.dataSync().slice()];
      const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
        strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 6, 10],
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      [before, x, dy, after].forEach((t, i) => assert.deepEqual(t.dataSync(), snapshot[i]));
      assert.equal(dw.size, 3 * 3 * 6 * 10);
      return [];
    });
  });

  test('NCHW data format', () => {
    const x = input([2, 5, 9, 9]);
    const dy = input([2, 6, 9, 9]);
    agree('NCHW', () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
        strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 5, 6],
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
    tf.dispose([x, dy]);
  });
});

describe('Conv2DBackpropInput (wasm) vs cpu', () => {
  for (const c of convCases) {
    test(label(c), () => {
      const w = input([...c.k, c.x[3], c.co]);
      const dy = input(outShape(c));
      agree(label(c), () => tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, c.x, c.stride, c.pad));
      tf.dispose([w, dy]);
    });
  }

  // Both routes on every shape, whichever the channel threshold picks: the SIMD kernel's edges (position
  // counts not a multiple of its 4-position tile, K = KH*KW*Ci not a multiple of 4, strides, asymmetric and
  // negative padding) and the XNNPACK route on few channels.
  const routeCases: ConvCase[] = [
    ...convCases,
    { x: [1, 7, 9, 4], k: [3, 3], co: 6, stride: 2, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
    { x: [3, 5, 5, 2], k: [3, 3], co: 9, stride: 2, pad: 'same' },
    { x: [1, 3, 3, 1], k: [5, 5], co: 3, stride: 1, pad: 3 },
    { x: [2, 28, 28, 1], k: [3, 3], co: 128, stride: 1, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
  ];
  for (const c of routeCases) {
    test(`both routes: ${label(c)}`, () => {
      const w = input([...c.k, c.x[3], c.co]);
      const dy = input(outShape(c));
      const ref = runOn('cpu', () => tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, c.x, c.stride, c.pad))[0];
      for (const route of [conv2dBackpropInputSimd, conv2dBackpropInputXnnpack]) {
        const got = runOn('wasm', () => route(c.x, dy as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad))[0];
        assert.ok(relErr(got, ref) < TOL, `${route.name}: relErr ${relErr(got, ref).toExponential(2)}`);
      }
      tf.dispose([w, dy]);
    });
  }

  test('NCHW data format', () => {
    const w = input([3, 3, 4, 6]);
    const dy = input([2, 6, 8, 8]);
    agree('NCHW', () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, {
        strides: 1, pad: 'same', dataFormat: 'NCHW', inputShape: [2, 4, 8, 8],
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
    tf.dispose([w, dy]);
  });
});

describe('BatchMatMul / _FusedMatMul (wasm) vs cpu', () => {
  const cases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean }> = [];
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      cases.push({ a: ta ? [37, 23] : [23, 37], b: tb ? [19, 37] : [37, 19], ta, tb });
      // Batched, large enough per matrix to take the split path.
      cases.push({ a: ta ? [3, 80, 70] : [3, 70, 80], b: tb ? [3, 60, 80] : [3, 80, 60], ta, tb });
      // Batched and small (stock kernel), and broadcast batch against a single matrix.
      cases.push({ a: ta ? [4, 5, 6] : [4, 6, 5], b: tb ? [7, 5] : [5, 7], ta, tb });
      cases.push({ a: ta ? [90, 70] : [70, 90], b: tb ? [2, 3, 64, 90] : [2, 3, 90, 64], ta, tb });
    }
  }
  for (const c of cases) {
    test(`a=${c.a} b=${c.b} tA=${c.ta} tB=${c.tb}`, () => {
      const a = input(c.a);
      const b = input(c.b);
      agree('matMul', () => tf.matMul(a, b, c.ta, c.tb));
      tf.dispose([a, b]);
    });
  }

  test('fused matMul with transposes, bias and relu', () => {
    const a = input([40, 30]);
    const b = input([20, 40]);
    const bias = input([20]);
    agree('fused', () => tf.fused.matMul({ a, b, transposeA: true, transposeB: true, bias, activation: 'relu' }));
    tf.dispose([a, b, bias]);
  });
});

describe('pooling gradients (wasm) vs cpu', () => {
  const cases: Array<{ x: number[]; f: number; s: number; pad: 'valid' | 'same' }> = [
    { x: [2, 8, 8, 5], f: 2, s: 2, pad: 'valid' },
    { x: [3, 9, 7, 4], f: 2, s: 2, pad: 'valid' }, // odd sizes: last row/col never pooled
    { x: [2, 9, 9, 3], f: 3, s: 3, pad: 'valid' },
    { x: [2, 8, 8, 3], f: 3, s: 1, pad: 'same' }, // overlapping: stock kernel
    { x: [2, 7, 7, 3], f: 3, s: 2, pad: 'valid' },
  ];
  for (const c of cases) {
    test(`avgPool grad x=${c.x} f=${c.f} s=${c.s} ${c.pad}`, () => {
      const x = input(c.x);
      agree('avgPool grad', () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(t as tf.Tensor4D, c.f, c.s, c.pad), tf.avgPool(x as tf.Tensor4D, c.f, c.s, c.pad))))(x));
      x.dispose();
    });
    test(`maxPool grad x=${c.x} f=${c.f} s=${c.s} ${c.pad}`, () => {
      const x = input(c.x);
      const dy = input(tf.maxPool(x as tf.Tensor4D, c.f, c.s, c.pad).shape);
      agree('maxPool grad', () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, c.f, c.s, c.pad), dy)))(x));
      tf.dispose([x, dy]);
    });
  }

  // The stock wasm MaxPoolGrad and MaxPoolWithArgmax drop windows whose
  // maximum is negative; random inputs in [-1, 1) rarely have any.
  for (const [f, s, pad] of [[3, 1, 'valid'], [3, 1, 'same'], [3, 2, 'same'], [2, 2, 'valid'], [2, 2, 'same']] as const) {
    test(`maxPool grad with all-negative inputs f=${f} s=${s} ${pad}`, () => {
      const x = tf.sub(tf.neg(tf.abs(input([2, 7, 7, 3]))), 0.1);
      const dy = input(tf.maxPool(x as tf.Tensor4D, f, s, pad).shape);
      agree('negative maxPool grad', () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, f, s, pad), dy)))(x));
      tf.dispose([x, dy]);
    });
  }

  test('maxPool grad with ties goes to the first maximum, as on cpu', () => {
    // ReLU before max pooling makes whole windows of zeros: every entry ties.
    const x = tf.relu(input([2, 8, 8, 6]));
    const xq = tf.round(tf.mul(x, 2)); // coarse values: ties inside windows too
    const dy = input([2, 4, 4, 6]);
    agree('ties', () => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid'), dy)))(xq));
    tf.dispose([x, xq, dy]);
  });
});

describe('Sum / Mean (wasm) vs cpu', () => {
  const shapes: Array<{ shape: number[]; axes: number[] }> = [
    { shape: [4, 6, 5, 7], axes: [1, 2] },
    { shape: [4, 6, 5, 7], axes: [0, 1, 2] },
    { shape: [4, 6, 5, 7], axes: [0] },
    { shape: [4, 6, 5, 7], axes: [2] },
    { shape: [4, 6, 5, 7], axes: [2, 3] },
    { shape: [4, 6, 5, 7], axes: [0, 2] },
    { shape: [4, 6, 5, 7], axes: [3] },
    { shape: [300, 70], axes: [0] },
  ];
  for (const { shape, axes } of shapes) {
    for (const keepDims of [false, true]) {
      test(`shape=${shape} axes=${axes} keepDims=${keepDims}`, () => {
        const x = input(shape);
        agree('sum', () => tf.sum(x, axes, keepDims));
        agree('mean', () => tf.mean(x, axes, keepDims));
        x.dispose();
      });
    }
  }
  test('int32 sum uses the stock kernel and stays exact', () => {
    const x = tf.tensor(Array.from({ length: 60 }, (_, i) => i * 7 - 100), [3, 4, 5], 'int32');
    agree('int sum', () => tf.sum(x, [0, 1]));
    x.dispose();
  });
});

describe('other wasm kernels', () => {
  test('Identity shares data and survives disposal of its source', () => {
    const prev = tf.getBackend();
    void tf.setBackend('wasm'); // already initialised: switches synchronously
    try {
      const x = input([3, 4]);
      const expected = Array.from(x.dataSync());
      const y = tf.clone(x);
      x.dispose();
      assert.deepEqual(Array.from(y.dataSync()), expected);
      y.dispose();
    } finally {
      void tf.setBackend(prev);
    }
  });

  test('UnsortedSegmentSum and the gradient of gather', () => {
    const x = input([6, 3]);
    const ids = tf.tensor1d([2, 0, 2, 5, -1, 1], 'int32');
    agree('segment sum', () => tf.unsortedSegmentSum(x, ids, 4));
    const idx = tf.tensor1d([0, 2, 2, 1, 0], 'int32');
    const table = input([4, 5]);
    agree('gather grad', () => tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, idx))))(table));
    tf.dispose([x, ids, idx, table]);
  });

  test('resizeBilinear and its gradient (CAM upsampling)', () => {
    const x = input([2, 4, 4, 3]);
    for (const [ac, hp] of [[false, true], [true, false], [false, false]] as const) {
      agree('resize', () => tf.image.resizeBilinear(x as tf.Tensor4D, [28, 28], ac, hp));
      const dy = input([2, 28, 28, 3]);
      agree('resize grad', () =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.image.resizeBilinear(t as tf.Tensor4D, [28, 28], ac, hp), dy)))(x),
      );
      dy.dispose();
    }
    x.dispose();
  });
});

describe('registration', () => {
  test('wrappers delegate to the stock kernels, never to themselves', () => {
    for (const k of ['BatchMatMul', '_FusedMatMul', 'Sum', 'Mean', 'AvgPoolGrad', 'MaxPoolGrad', 'Identity']) {
      assert.ok(replacedKernels().includes(`wasm/${k}`), `${k} not replaced`);
      const orig = originalKernel(k, 'wasm');
      assert.ok(orig !== undefined, `${k}: no original`);
      assert.notEqual(orig.kernelFunc, tf.getKernel(k, 'wasm')?.kernelFunc, `${k}: original is our own wrapper`);
    }
    assert.ok(replacedKernels().includes('wasm/Conv2DBackpropFilter'));
  });
});
