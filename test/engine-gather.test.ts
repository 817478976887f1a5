/**
 * Our wasm GatherV2 (src/engine/kernels/gather.ts) against the stock wasm kernel, bit for bit, and against
 * the cpu backend, on fresh random shapes, axes, batch dimensions and dtypes.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel, replacedKernels } from '../src/engine/index.js';
import { initTestBackends, runOn } from './engine-util.js';

before(async () => {
  await initTestBackends();
});

/** A small deterministic generator, so that a failure names a case that can be re-run. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function bits(t: tf.Tensor): Uint8Array {
  const v = t.dataSync();
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

function stockGather(x: tf.Tensor, indices: tf.Tensor, axis: number, batchDims: number): tf.Tensor {
  const stock = originalKernel(tf.GatherV2, 'wasm');
  assert.ok(stock !== undefined);
  const out = stock.kernelFunc({ inputs: { x, indices }, attrs: { axis, batchDims }, backend: tf.backend() }) as tf.TensorInfo;
  return tf.engine().makeTensorFromTensorInfo(out);
}

interface Case {
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  axis: number;
  batchDims: number;
  indexShape: number[];
  values: number[];
  indices: number[];
}

/** A random case: rank 1-4, any axis, batchDims 0 or (when the ranks allow) 1, slices of 1 to ~100 elements. */
function randomCase(rand: () => number): Case {
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const rank = int(1, 4);
  const shape = Array.from({ length: rank }, () => int(1, rank <= 2 ? 40 : 9));
  const batchDims = rank >= 2 && rand() < 0.3 ? 1 : 0;
  const axis = int(batchDims, rank - 1);
  const dtype = (['float32', 'int32', 'bool'] as const)[int(0, 2)];
  const indexShape = batchDims === 1 ? [shape[0], int(0, 6)] : rand() < 0.5 ? [int(0, 12)] : [int(1, 3), int(1, 4)];
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: size }, () => (dtype === 'float32' ? rand() * 2 - 1 : dtype === 'int32' ? int(-1000, 1000) : int(0, 1)));
  const indices = Array.from({ length: indexShape.reduce((a, b) => a * b, 1) }, () => int(0, shape[axis] - 1));
  return { shape, dtype, axis, batchDims, indexShape, values, indices };
}

describe('GatherV2 on wasm', () => {
  test('is ours, and the stock kernel it falls back to is not', () => {
    assert.ok(replacedKernels().includes('wasm/GatherV2'));
    assert.notEqual(originalKernel(tf.GatherV2, 'wasm')?.kernelFunc, tf.getKernel(tf.GatherV2, 'wasm')?.kernelFunc);
  });

  test('equals the cpu backend, and the stock kernel bit for bit, on 300 random cases', () => {
    const rand = lcg(Date.now());
    for (let n = 0; n < 300; n++) {
      const c = randomCase(rand);
      const name = JSON.stringify({ ...c, values: undefined, indices: undefined });
      const make = (): [tf.Tensor, tf.Tensor] => [tf.tensor(c.values, c.shape, c.dtype), tf.tensor(c.indices, c.indexShape, 'int32')];
      const run = (fn: (x: tf.Tensor, i: tf.Tensor) => tf.Tensor): { shape: number[]; bits: Uint8Array } =>
        runOnBackend('wasm', () => {
          const [x, i] = make();
          const out = fn(x, i);
          return { shape: out.shape, bits: bits(out) };
        });
      if (c.batchDims === 0) {
        // With batchDims 1 the stock kernel (tfjs-backend-wasm 4.22) reads outside its input after the first
        // batch (garbage values; the cpu backend and ours agree): only the cpu backend is the reference there.
        const ours = run((x, i) => tf.gather(x, i, c.axis, c.batchDims));
        const stock = run((x, i) => stockGather(x, i, c.axis, c.batchDims));
        assert.deepEqual(ours.shape, stock.shape, name);
        assert.deepEqual(ours.bits, stock.bits, name);
      }
      const [cpu] = runOn('cpu', () => {
        const [x, i] = make();
        return tf.cast(tf.gather(x, i, c.axis, c.batchDims), 'float32');
      });
      const [wasm] = runOn('wasm', () => {
        const [x, i] = make();
        return tf.cast(tf.gather(x, i, c.axis, c.batchDims), 'float32');
      });
      assert.deepEqual(wasm, cpu, name);
    }
  });

  test('moves the bits of NaN payloads, -0 and infinities unchanged', () => {
    const raw = new Uint32Array([0x7fc00001, 0xffc12345, 0x80000000, 0x7f800000, 0xff800000, 0x3f800000]);
    const out = runOnBackend('wasm', () => {
      const x = tf.tensor(new Float32Array(raw.buffer.slice(0)), [6, 1]);
      return bits(tf.gather(x, tf.tensor1d([5, 4, 3, 2, 1, 0, 0], 'int32')));
    });
    const expected = new Uint32Array([raw[5], raw[4], raw[3], raw[2], raw[1], raw[0], raw[0]]);
    assert.deepEqual(out, new Uint8Array(expected.buffer));
  });

  test('an index out of range is an error naming it; no indices give an empty result', () => {
    runOnBackend('wasm', () => {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      assert.throws(() => tf.gather(x, tf.tensor1d([0, 3], 'int32')), /index value 3 is not in \[0, 2\]/);
      assert.throws(() => tf.gather(x, tf.tensor1d([-1], 'int32')), /index value -1 is not in \[0, 2\]/);
      assert.deepEqual(tf.gather(x, tf.tensor1d([], 'int32'), 1).shape, [3, 0]);
    });
  });

  test('its gradient (UnsortedSegmentSum of the upstream gradient) agrees with the cpu backend', () => {
    const rand = lcg(Date.now() + 1);
    const x = Array.from({ length: 5 * 7 * 3 }, () => rand() * 2 - 1);
    const idx = Array.from({ length: 11 }, () => Math.floor(rand() * 7));
    const dy = Array.from({ length: 5 * 11 * 3 }, () => rand() * 2 - 1);
    const grad = (): tf.Tensor =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(idx, 'int32'), 1), tf.tensor(dy, [5, 11, 3]))))(tf.tensor(x, [5, 7, 3]));
    const [cpu] = runOn('cpu', grad);
    const [wasm] = runOn('wasm', grad);
    for (let i = 0; i < cpu.length; i++) assert.ok(Math.abs(cpu[i] - wasm[i]) < 1e-5, `gradient entry ${i}: ${wasm[i]} vs ${cpu[i]}`);
  });
});

function runOnBackend<T>(backend: string, fn: () => T): T {
  const prev = tf.getBackend();
  void tf.setBackend(backend);
  try {
    let result: T | undefined;
    // The result is plain data (shapes, bytes): tidy disposes every tensor made on the way.
    tf.tidy(() => {
      result = fn();
    });
    return result as T;
  } finally {
    void tf.setBackend(prev);
  }
}
