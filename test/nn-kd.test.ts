import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { saveModel } from '../src/nn/checkpoint.js';
import { fromNchw, type LabeledImages } from '../src/nn/data.js';
import { kdLoss } from '../src/nn/losses.js';
import { disposeTrainState, evaluate, initTrainState, train, type TrainConfig, type TrainState } from '../src/nn/train.js';
import type { Model } from '../src/nn/types.js';
import { buildModel } from '../src/nn/zoo.js';
import { evalStage, type EvalParams, type EvalResult } from '../src/stages/eval.js';
import { writeNpy } from '../src/store/npy.js';
import { createRng } from '../src/util/rng.js';
import { stageContext, tinyData, viewOf, writeTinyDataset } from './distill-helpers.js';
import { setupBackend } from './nn-backend.js';

/** KL(softmax(t / T) || softmax(s / T)) * T^2, averaged over rows, in float64. */
function kdReference(s: number[][], t: number[][], temp: number): number {
  let total = 0;
  for (let i = 0; i < s.length; i++) {
    const logSoftmax = (z: number[]): number[] => {
      const m = Math.max(...z.map((v) => v / temp));
      const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v / temp - m), 0));
      return z.map((v) => v / temp - lse);
    };
    const lp = logSoftmax(t[i]);
    const lq = logSoftmax(s[i]);
    for (let k = 0; k < lp.length; k++) total += Math.exp(lp[k]) * (lp[k] - lq[k]);
  }
  return (total / s.length) * temp * temp;
}

function tinySet(perClass: number, seed: string): LabeledImages {
  const d = tinyData({ classes: 3, perClass, size: 8, seed });
  return fromNchw(d.x, d.y, [d.y.length, 1, 8, 8]);
}

/** The same images with every label replaced by 0: only a teacher can tell the classes apart. */
function wrongLabels(set: LabeledImages): LabeledImages {
  return { ...set, y: new Int32Array(set.n) };
}

const TEACHER_ARCH = { name: 'convnet' as const, width: 8, depth: 2, norm: 'batch' as const };
const STUDENT_ARCH = { name: 'convnet' as const, width: 8, depth: 2 };
const SHAPE = { channels: 1, height: 8, width: 8, classes: 3 };

async function trainTeacher(train0: LabeledImages): Promise<{ model: Model; state: TrainState }> {
  const model = buildModel(TEACHER_ARCH, SHAPE);
  const cfg: TrainConfig = { epochs: 8, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batch: 12 };
  const state = await train(model, train0, null, cfg, createRng('teacher-train'), initTrainState(model, createRng('teacher-init')));
  return { model, state };
}

describe('knowledge distillation (SRe2L relabel)', () => {
  let root: string;
  let teacher: { model: Model; state: TrainState };
  const realTrain = tinySet(12, 'kd-train');
  const realTest = tinySet(10, 'kd-test');

  before(async () => {
    await setupBackend();
    root = mkdtempSync(join(tmpdir(), 'metadd-kd-'));
    teacher = await trainTeacher(realTrain);
  });
  after(() => {
    disposeTrainState(teacher.state);
    rmSync(root, { recursive: true, force: true });
  });

  it('kdLoss equals T^2 * batch-mean KL(teacher_T || student_T) computed in float64, and is 0 for equal logits', () => {
    const rng = createRng('kd-logits');
    const s = Array.from({ length: 5 }, () => Array.from({ length: 4 }, () => 3 * rng.normal()));
    const t = Array.from({ length: 5 }, () => Array.from({ length: 4 }, () => 3 * rng.normal()));
    for (const temp of [1, 3, 30]) {
      const got = tf.tidy(() => kdLoss(tf.tensor2d(s), tf.tensor2d(t), temp).dataSync()[0]);
      const want = kdReference(s, t, temp);
      assert.ok(want > 1e-3, 'the case must not be degenerate');
      assert.ok(Math.abs(got - want) <= 1e-4 * want + 1e-6, `T=${temp}: ${got} vs float64 ${want}`);
    }
    const same = tf.tidy(() => kdLoss(tf.tensor2d(s), tf.tensor2d(s), 4).dataSync()[0]);
    assert.ok(Math.abs(same) < 1e-5, `KL of equal distributions: ${same}`);
  });

  it('kdLoss: gradient flows into the student only, and matches T (q_T - p_T) / N', () => {
    const s = tf.tensor2d([[1, 2, -1], [0.5, -0.5, 2]]);
    const t = tf.tensor2d([[2, 0, 1], [-1, 1, 0]]);
    const temp = 2;
    const [gs, gt] = tf.grads((a: tf.Tensor, b: tf.Tensor) => kdLoss(a as tf.Tensor2D, b as tf.Tensor2D, temp))([s, t]);
    const q = tf.softmax(tf.div(s, temp)).arraySync() as number[][];
    const p = tf.softmax(tf.div(t, temp)).arraySync() as number[][];
    const g = gs.arraySync() as number[][];
    for (let i = 0; i < 2; i++) for (let k = 0; k < 3; k++) assert.ok(Math.abs(g[i][k] - (temp * (q[i][k] - p[i][k])) / 2) < 1e-5);
    assert.ok(Math.max(...Array.from(tf.abs(gt).dataSync())) === 0, "the teacher must get no gradient");
    tf.dispose([s, t, gs, gt]);
  });

  it('a student trained on wrong hard labels learns the classes when the teacher labels every batch', async () => {
    const student = buildModel(STUDENT_ARCH, SHAPE);
    const set = wrongLabels(realTrain);
    const base: TrainConfig = { epochs: 10, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch: 12, augment: 'dsa', dsa: { strategy: 'crop' } };
    const { model: tm, state: ts } = teacher;
    const teacherAcc = evaluate(tm, ts.params, ts.bnState, realTest).accuracy;
    assert.ok(teacherAcc >= 0.9, `the teacher must be good for this test to mean anything (${teacherAcc})`);
    const kd = { temperature: 4, logits: (x: tf.Tensor4D) => tm.forward(ts.params, x, { training: false, bnState: ts.bnState }) };
    const withKd = await train(student, set, realTest, { ...base, kd }, createRng('student'), initTrainState(student, createRng('s-init')));
    const hard = await train(student, set, realTest, base, createRng('student'), initTrainState(student, createRng('s-init')));
    const accKd = withKd.curves.testAccuracy.at(-1) ?? 0;
    const accHard = hard.curves.testAccuracy.at(-1) ?? 0;
    disposeTrainState(withKd);
    disposeTrainState(hard);
    assert.ok(accKd >= 0.9, `KD student accuracy ${accKd}`);
    assert.ok(accHard <= 0.5, `hard wrong labels must not teach the classes (${accHard})`);
  });

  it('eval stage: with a teacher input and kd params the students learn from the teacher; without the input it refuses', async () => {
    const dsDir = join(root, 'dataset');
    writeTinyDataset(dsDir, { classes: 3, perClass: 12, size: 8 });
    const teacherDir = join(root, 'teacher');
    saveModel(teacherDir, teacher.model, teacher.state.params, teacher.state.bnState);
    const setDir = join(root, 'set');
    mkdirSync(setDir, { recursive: true });
    const set = tinyData({ classes: 3, perClass: 3, size: 8, seed: 'kd-set' });
    writeNpy(join(setDir, 'images.npy'), set.x, [9, 1, 8, 8]);
    // Wrong labels: the KD students can only learn from the teacher.
    writeNpy(join(setDir, 'labels.npy'), new Int32Array(9), [9]);
    const params: EvalParams = {
      arch: STUDENT_ARCH,
      models: 1,
      epochs: 30,
      lr: 0.01,
      momentum: 0.9,
      weight_decay: 5e-4,
      batch: 256,
      augment: 'dsa',
      report_epoch: 'final',
      kd: { temperature: 4 },
      seed: 0,
    };
    const inputs = { dataset: viewOf('dataset', dsDir), images: viewOf('distill', setDir), teacher: viewOf('pretrain', teacherDir) };
    const before = tf.memory().numTensors;
    const { ctx, outDir } = stageContext('eval', params, inputs, root);
    await evalStage.run(ctx);
    assert.equal(tf.memory().numTensors, before, 'the teacher and the students are released');
    const r = JSON.parse(readFileSync(join(outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.equal(r.kd_temperature, 4);
    assert.ok(r.mean >= 0.8, `KD eval accuracy ${r.mean}`);

    const hard = stageContext('eval', { ...params, kd: null }, inputs, root);
    await evalStage.run(hard.ctx);
    const rh = JSON.parse(readFileSync(join(hard.outDir, 'result.json'), 'utf8')) as EvalResult;
    assert.equal(rh.kd_temperature, null);
    assert.ok(rh.mean <= 0.5, `hard-label eval on wrong labels ${rh.mean}`);

    const { teacher: _t, ...noTeacher } = inputs;
    await assert.rejects(evalStage.run(stageContext('eval', params, noTeacher, root).ctx), /no input 'teacher'/);
  });
});
