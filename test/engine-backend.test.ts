/** Backend selection rules, error messages and idempotent registration. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  BACKEND_ENV_VAR,
  BackendUnavailableError,
  backendName,
  engineGradients,
  initBackend,
  originalKernel,
  replacedGradients,
  replacedKernels,
  resolvePreference,
} from '../src/engine/index.js';

describe('resolvePreference', () => {
  test('an explicit backend wins over the environment', () => {
    assert.equal(resolvePreference('cpu', { [BACKEND_ENV_VAR]: 'wasm' }), 'cpu');
    assert.equal(resolvePreference('WASM', {}), 'wasm');
  });
  test("the environment fills in 'auto' (and a missing preference)", () => {
    assert.equal(resolvePreference('auto', { [BACKEND_ENV_VAR]: 'cpu' }), 'cpu');
    assert.equal(resolvePreference(undefined, { [BACKEND_ENV_VAR]: ' Wasm ' }), 'wasm');
    assert.equal(resolvePreference('auto', {}), 'auto');
    assert.equal(resolvePreference('auto', { [BACKEND_ENV_VAR]: '' }), 'auto');
  });
  test('unknown names are rejected with the valid choices', () => {
    assert.throws(() => resolvePreference('webgl', {}), /unknown backend 'webgl'.*auto, tensorflow, wasm, cpu/);
    assert.throws(() => resolvePreference('auto', { [BACKEND_ENV_VAR]: 'gpu' }), new RegExp(`${BACKEND_ENV_VAR}='gpu' is not a backend`));
  });
});

describe('initBackend', () => {
  test('cpu and wasm load, switch, and report their names', async () => {
    assert.equal(await initBackend('wasm'), 'wasm');
    assert.equal(backendName(), 'wasm');
    assert.equal(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), true);
    assert.equal(await initBackend('cpu'), 'cpu');
    assert.equal(backendName(), 'cpu');
    assert.equal(await tf.setBackend('wasm'), true);
    assert.equal(backendName(), 'wasm');
    await tf.setBackend('cpu');
  });

  test("a requested 'tensorflow' that cannot load says what to install", async () => {
    let native = false;
    try {
      await import(['@tensorflow', 'tfjs-node'].join('/'));
      native = true;
    } catch {
      // Expected here: tfjs-node's install script downloads libtensorflow and is not installed.
    }
    if (native) {
      assert.equal(await initBackend('tensorflow'), 'tensorflow');
      return;
    }
    await assert.rejects(initBackend('tensorflow'), (e: unknown) => {
      assert.ok(e instanceof BackendUnavailableError);
      assert.equal(e.backend, 'tensorflow');
      assert.match(e.message, /npm install @tensorflow\/tfjs-node/);
      assert.match(e.message, /install-scripts approve/);
      return true;
    });
    // 'auto' falls through to the next backend instead.
    const prev = process.env[BACKEND_ENV_VAR];
    delete process.env[BACKEND_ENV_VAR];
    try {
      assert.equal(await initBackend('auto'), 'wasm');
    } finally {
      if (prev !== undefined) process.env[BACKEND_ENV_VAR] = prev;
    }
  });

  test('METADD_BACKEND steers auto', async () => {
    const prev = process.env[BACKEND_ENV_VAR];
    process.env[BACKEND_ENV_VAR] = 'cpu';
    try {
      assert.equal(await initBackend(), 'cpu');
      assert.equal(await initBackend('wasm'), 'wasm');
    } finally {
      if (prev === undefined) delete process.env[BACKEND_ENV_VAR];
      else process.env[BACKEND_ENV_VAR] = prev;
    }
  });

  test('registration is idempotent: no wrapper wraps another', async () => {
    await initBackend('wasm');
    const kernels = replacedKernels();
    const matmul = tf.getKernel('BatchMatMul', 'wasm');
    const stock = originalKernel('BatchMatMul', 'wasm');
    await initBackend('cpu');
    await initBackend('wasm');
    assert.deepEqual(replacedKernels(), kernels);
    assert.equal(originalKernel('BatchMatMul', 'wasm'), stock);
    assert.notEqual(stock?.kernelFunc, matmul?.kernelFunc);
    assert.deepEqual(replacedGradients(), [...new Set(engineGradients.map((g) => g.kernelName))].sort());
    // Still computes after re-registration.
    const r = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]), false, false);
    assert.deepEqual(Array.from(r.dataSync()), [11]);
    await tf.setBackend('cpu');
  });

  test('gradients are registered (tfjs-core alone registers none in Node)', async () => {
    await initBackend('cpu');
    for (const name of ['Add', 'Conv2D', 'Conv2DBackpropFilter', 'AvgPoolGrad', 'Equal', 'Tanh', 'Exp', 'Softmax']) {
      assert.ok(tf.getGradient(name) !== undefined, `no gradient for ${name}`);
    }
    // Tanh's gradient reads its saved input, not its output (second-order correctness).
    assert.deepEqual(tf.getGradient('Tanh')?.inputsToSave, ['x']);
    assert.equal(tf.getGradient('Tanh')?.outputsToSave, undefined);
  });
});
