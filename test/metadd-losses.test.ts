import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { auxOutputs, type AuxNet } from '../src/distill/metadd/aux.js';
import { architectureInvariantLoss, camVarianceLoss, metaFeatureLoss } from '../src/distill/metadd/losses.js';
import { metaddExtraLoss } from '../src/distill/metadd/extra.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { finiteDifference, useCpu } from './distill-helpers.js';

/**
 * An auxiliary network whose CAMs are smooth in the pixels: sigmoid features and positive classifier
 * weights make every CAM value positive, so the ReLU is the identity near the test point. The weights
 * are scaled up so that the logits, and L_ai, move well above float32 resolution under the finite
 * difference step (the normalised CAMs do not depend on the scale).
 */
function smoothAux(width: number, depth: number, seed: string): AuxNet {
  const model = buildModel({ name: 'convnet', width, depth, act: 'sigmoid', norm: 'instance', head: 'gap' }, { channels: 1, height: 8, width: 8, classes: 3 });
  const params = model.init(createRng(seed));
  const w = params['classifier.weight'];
  params['classifier.weight'] = tf.mul(tf.abs(w), 20);
  w.dispose();
  return { label: seed, model, params, bnState: {} };
}

describe('MetaDD losses', () => {
  before(useCpu);

  it('L_var is the mean over pixels of the population variance across networks (float64)', () => {
    const rng = createRng('var');
    const maps = [0, 1, 2].map(() => Float32Array.from({ length: 2 * 4 * 5 }, () => rng.next()));
    const got = tf.tidy(() => camVarianceLoss(maps.map((m) => tf.tensor3d(m, [2, 4, 5]))).dataSync()[0]);
    let expected = 0;
    for (let p = 0; p < 40; p++) {
      const v = maps.map((m) => m[p]);
      const mean = v.reduce((a, b) => a + b, 0) / 3;
      expected += v.reduce((a, b) => a + (b - mean) ** 2, 0) / 3 / 40;
    }
    assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
    assert.equal(tf.tidy(() => camVarianceLoss([tf.ones([1, 2, 2]), tf.ones([1, 2, 2])]).dataSync()[0]), 0);
  });

  it('L_pos (our extension) is 1 - sum of the pixelwise min / sum of the max, per image (float64)', () => {
    const rng = createRng('pos');
    const [n, h, w] = [3, 4, 5];
    const maps = [0, 1, 2].map(() => Float32Array.from({ length: n * h * w }, () => rng.next()));
    const got = tf.tidy(() => metaFeatureLoss(maps.map((m) => tf.tensor3d(m, [n, h, w]))).dataSync()[0]);
    let expected = 0;
    for (let i = 0; i < n; i++) {
      let inter = 0;
      let union = 0;
      for (let p = i * h * w; p < (i + 1) * h * w; p++) {
        const v = maps.map((m) => m[p]);
        inter += Math.min(...v);
        union += Math.max(...v);
      }
      expected += (1 - inter / (union + 1e-6)) / n;
    }
    assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
    // Hand-made maps: networks that agree share everything; disjoint regions share nothing.
    const same = tf.tensor3d([[[0, 0.5], [1, 0.25]]]);
    assert.ok(Math.abs(tf.tidy(() => metaFeatureLoss([same, same]).dataSync()[0])) < 1e-6);
    const left = tf.tensor3d([[[1, 0], [1, 0]]]);
    const right = tf.tensor3d([[[0, 1], [0, 1]]]);
    assert.ok(Math.abs(tf.tidy(() => metaFeatureLoss([left, right]).dataSync()[0]) - 1) < 1e-6);
    // Half overlap: intersection 1 pixel, union 3 pixels.
    const a = tf.tensor3d([[[1, 1], [0, 0]]]);
    const b = tf.tensor3d([[[1, 0], [1, 0]]]);
    assert.ok(Math.abs(tf.tidy(() => metaFeatureLoss([a, b]).dataSync()[0]) - (1 - 1 / 3)) < 1e-5);
    tf.dispose([same, left, right, a, b]);
  });

  it('the plug-in weighs L_pos only when asked: lambda_pos alone makes it active, total = lambda_pos L_pos', () => {
    const nets = [smoothAux(3, 1, 'w-a'), smoothAux(4, 1, 'w-b')];
    const rng = createRng('w-x');
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 64 }, () => rng.normal()), [2, 8, 8, 1]);
    const STEP = { iteration: 0, step: 0, globalStep: 0 };
    const paper = metaddExtraLoss(nets, { lambdaAi: 0, lambdaVar: 0 });
    const pos = metaddExtraLoss(nets, { lambdaAi: 0, lambdaVar: 0, lambdaPos: 3 });
    assert.equal(paper.active, false);
    assert.equal(pos.active, true);
    tf.tidy(() => {
      const r = pos.compute(x, Int32Array.from([0, 2]), STEP);
      const lPos = r.terms.pos.dataSync()[0];
      assert.ok(lPos > 0 && lPos < 1, `L_pos ${lPos}`);
      assert.ok(Math.abs(r.total.dataSync()[0] - 3 * lPos) < 1e-5);
      assert.equal(paper.compute(x, Int32Array.from([0, 2]), STEP).total.dataSync()[0], 0);
    });
    for (const n of nets) tf.dispose(Object.values(n.params));
    x.dispose();
  });

  it('L_ai = mean over networks of CE + KL(p_bar || p_m) (float64)', () => {
    const logits = [
      [[2, -1, 0.5], [0.1, 0.2, 3]],
      [[1, 1, -2], [-1, 4, 0]],
      [[0, 3, 0], [2, 2, 2]],
    ];
    const labels = [0, 2];
    const terms = architectureInvariantLoss(
      logits.map((l) => tf.tensor2d(l)),
      tf.tensor1d(labels, 'int32'),
    );
    const softmax = (z: number[]): number[] => {
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    let ce = 0;
    let kl = 0;
    for (let n = 0; n < 2; n++) {
      const ps = logits.map((l) => softmax(l[n]));
      const bar = [0, 1, 2].map((c) => ps.reduce((a, p) => a + p[c], 0) / 3);
      for (const p of ps) {
        ce += -Math.log(p[labels[n]]) / 6;
        kl += bar.reduce((a, b, c) => a + b * Math.log(b / p[c]), 0) / 6;
      }
    }
    assert.ok(Math.abs(terms.ce.dataSync()[0] - ce) < 1e-5, `ce ${terms.ce.dataSync()[0]} vs ${ce}`);
    assert.ok(Math.abs(terms.kl.dataSync()[0] - kl) < 1e-5, `kl ${terms.kl.dataSync()[0]} vs ${kl}`);
    assert.ok(Math.abs(terms.total.dataSync()[0] - (ce + kl)) < 1e-5);
    // Networks that agree have no KL term.
    const same = architectureInvariantLoss([tf.tensor2d([[1, 2, 3]]), tf.tensor2d([[1, 2, 3]])], tf.tensor1d([1], 'int32'));
    assert.ok(Math.abs(same.kl.dataSync()[0]) < 1e-7);
  });

  it('gradients of L_var, L_ai and L_pos w.r.t. the pixels agree with finite differences', () => {
    const nets = [smoothAux(4, 2, 'fd-a'), smoothAux(3, 1, 'fd-b'), smoothAux(5, 2, 'fd-c')];
    const rng = createRng('fd-x');
    const x0 = Float32Array.from({ length: 2 * 64 }, () => rng.normal());
    const y = tf.tensor1d([1, 2], 'int32');
    const terms = (x: tf.Tensor4D): { var: tf.Scalar; ai: tf.Scalar; pos: tf.Scalar; cams: tf.Tensor3D[] } => {
      const outs = nets.map((n) => auxOutputs(n, x, y));
      return {
        var: camVarianceLoss(outs.map((o) => o.cams)),
        pos: metaFeatureLoss(outs.map((o) => o.cams)),
        ai: architectureInvariantLoss(
          outs.map((o) => o.logits),
          y,
        ).total,
        cams: outs.map((o) => o.cams),
      };
    };
    // Preconditions for finite differences: every map's maximum is well separated from its runner-up
    // (the normalisation's max is differentiable there) and every raw CAM is positive.
    tf.tidy(() => {
      for (const cam of terms(tf.tensor4d(x0, [2, 8, 8, 1])).cams) {
        const v = cam.dataSync();
        for (let i = 0; i < 2; i++) {
          const s = Array.from(v.subarray(i * 64, (i + 1) * 64)).sort((a, b) => b - a);
          assert.ok(s[0] - s[1] > 1e-3, `ties at the maximum (${s[0]} vs ${s[1]}): pick another seed`);
          assert.ok(s[63] > 0, 'a CAM value is clipped by the ReLU: pick another seed');
        }
      }
    });
    for (const which of ['var', 'ai', 'pos'] as const) {
      const f = (x: Float32Array): number => tf.tidy(() => terms(tf.tensor4d(x, [2, 8, 8, 1]))[which].dataSync()[0]);
      const g = tf.tidy(() => tf.grad((x: tf.Tensor) => terms(x as tf.Tensor4D)[which])(tf.tensor4d(x0, [2, 8, 8, 1])).dataSync());
      const scale = Math.max(...Array.from(g, Math.abs));
      assert.ok(scale > 1e-6, `${which}: gradient vanishes`);
      for (const idx of [3, 18, 27, 36, 45, 64, 90, 127]) {
        const fd = finiteDifference(f, x0, idx, 1e-2);
        assert.ok(Math.abs(fd - g[idx]) < 1e-2 * scale, `${which} pixel ${idx}: analytic ${g[idx]} vs finite difference ${fd} (scale ${scale})`);
      }
    }
    for (const n of nets) tf.dispose(Object.values(n.params));
    y.dispose();
  });
});
