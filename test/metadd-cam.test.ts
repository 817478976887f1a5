import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { auxOutputs, type AuxNet } from '../src/distill/metadd/aux.js';
import { CAM_EPS, bilinearMatrix, normalizedCams, rawCams, upsample } from '../src/distill/metadd/cam.js';
import { countFeatures, featureRatios } from '../src/distill/metadd/masks.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { useCpu } from './distill-helpers.js';

function auxNet(arch: Parameters<typeof buildModel>[0], seed: string): AuxNet {
  const model = buildModel(arch, { channels: 1, height: 8, width: 8, classes: 3 });
  return { label: seed, model, params: model.init(createRng(seed)), bnState: model.initBnState() };
}

describe('class activation maps', () => {
  before(useCpu);

  it('equal ReLU(sum_k W[k, y] A_k) computed directly in float64, and the logits read the same map', () => {
    const net = auxNet({ name: 'convnet', width: 5, depth: 2, head: 'gap' }, 'cam-net');
    const rng = createRng('cam-x');
    const x = tf.tensor4d(Float32Array.from({ length: 4 * 64 }, () => rng.normal()), [4, 8, 8, 1]);
    const labels = [2, 0, 1, 2];
    const y = tf.tensor1d(labels, 'int32');
    const features = net.model.features?.(net.params, x, { training: false }) as tf.Tensor4D;
    const w = net.model.classifierWeights?.(net.params) as tf.Tensor2D;
    const [n, h, wd, k] = features.shape;
    const a = features.dataSync();
    const wv = w.dataSync();
    const classes = w.shape[1];
    const cams = rawCams(features, w, y).dataSync();
    let checked = 0;
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < h * wd; p++) {
        let s = 0;
        for (let c = 0; c < k; c++) s += wv[c * classes + labels[i]] * a[(i * h * wd + p) * k + c];
        const expected = Math.max(0, s);
        assert.ok(Math.abs(cams[i * h * wd + p] - expected) < 1e-5, `image ${i} pixel ${p}: ${cams[i * h * wd + p]} vs ${expected}`);
        if (expected > 0) checked++;
      }
    }
    assert.ok(checked > 0 && checked < n * h * wd, 'the ReLU must be active somewhere and clip somewhere');
    // The gap head's logits are the spatial mean of the per-class maps plus the bias: same as forward().
    const out = auxOutputs(net, x, y);
    const ref = net.model.forward(net.params, x, { training: false });
    const d = tf.max(tf.abs(tf.sub(out.logits, ref))).dataSync()[0];
    assert.ok(d < 1e-5, `logits differ by ${d}`);
    tf.dispose([x, y, features, out.logits, out.cams, ref, ...Object.values(net.params)]);
  });

  it('upsample bilinearly with half-pixel centres (PyTorch align_corners=False)', () => {
    // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode='bilinear', align_corners=False)
    const expected = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4];
    const up = upsample(tf.tensor3d([1, 2, 3, 4], [1, 2, 2]), 4, 4);
    assert.deepEqual(Array.from(up.dataSync()), expected);
    // Non-square, non-integer factors: rows of the interpolation matrix are convex weights.
    for (const [out, inp] of [[28, 8], [28, 7], [5, 3], [3, 5]]) {
      const m = bilinearMatrix(out, inp);
      for (let i = 0; i < out; i++) {
        let s = 0;
        for (let j = 0; j < inp; j++) {
          assert.ok(m[i * inp + j] >= 0);
          s += m[i * inp + j];
        }
        assert.ok(Math.abs(s - 1) < 1e-6);
      }
    }
    // [1, 3, 2] -> [1, 5, 3]: each output row/column mixes the map exactly like the two matrices.
    const rng = createRng('up');
    const src = Float32Array.from({ length: 6 }, () => rng.next());
    const got = upsample(tf.tensor3d(src, [1, 3, 2]), 5, 3).dataSync();
    const rh = bilinearMatrix(5, 3);
    const rw = bilinearMatrix(3, 2);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let a = 0; a < 3; a++) for (let b = 0; b < 2; b++) s += rh[i * 3 + a] * src[a * 2 + b] * rw[j * 2 + b];
        assert.ok(Math.abs(got[i * 3 + j] - s) < 1e-6);
      }
    }
    up.dispose();
  });

  it('normalise each map by its own maximum (plus eps) to [0, 1)', () => {
    const net = auxNet({ name: 'convnet', width: 4, depth: 2, head: 'gap' }, 'norm-net');
    const rng = createRng('norm-x');
    const x = tf.tensor4d(Float32Array.from({ length: 3 * 64 }, () => rng.normal()), [3, 8, 8, 1]);
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const f = net.model.features?.(net.params, x, { training: false }) as tf.Tensor4D;
    const w = net.model.classifierWeights?.(net.params) as tf.Tensor2D;
    const raw = upsample(rawCams(f, w, y), 8, 8).dataSync();
    const norm = normalizedCams(f, w, y, 8, 8).dataSync();
    for (let i = 0; i < 3; i++) {
      const slice = raw.subarray(i * 64, (i + 1) * 64);
      const max = Math.max(...slice);
      for (let p = 0; p < 64; p++) assert.ok(Math.abs(norm[i * 64 + p] - slice[p] / (max + CAM_EPS)) < 1e-6);
      const nmax = Math.max(...norm.subarray(i * 64, (i + 1) * 64));
      assert.ok(nmax <= 1 && (max === 0 || nmax > 0.99));
    }
    tf.dispose([x, y, f, ...Object.values(net.params)]);
  });
});

describe('meta and heterogeneous features', () => {
  it('count pixels by hand-made maps', () => {
    // 6 pixels, 3 networks, tau 0.5.
    const a = [0.9, 0.6, 0.2, 0.7, 0.1, 0.5];
    const b = [0.8, 0.1, 0.3, 0.6, 0.2, 0.4];
    const c = [0.7, 0.2, 0.1, 0.1, 0.3, 0.49];
    // pixel 0: all -> meta; 1: only a -> het a; 2: none; 3: a and b (neither); 4: none; 5: only a (0.5 >= tau).
    const counts = countFeatures([a, b, c], 0.5);
    assert.deepEqual(counts, { pixels: 6, union: 4, meta: 1, heterogeneous: [2, 0, 0] });
    const r = featureRatios([a, b, c], 0.5);
    assert.equal(r.meta, 1 / 4);
    assert.deepEqual(r.heterogeneous, [0.5, 0, 0]);
    // Nothing above tau: ratios are undefined, not 0.
    assert.equal(featureRatios([[0.1], [0.2]], 0.5).meta, null);
    // A single network: every union pixel is meta, none heterogeneous.
    assert.deepEqual(countFeatures([[0.6, 0.1]], 0.5), { pixels: 2, union: 1, meta: 1, heterogeneous: [0] });
    assert.throws(() => countFeatures([[0.1, 0.2], [0.3]], 0.5), /maps of 2 and 1 pixels/);
  });
});
