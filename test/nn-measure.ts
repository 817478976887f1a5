/**
 * Timing of the nn training loop on the engine's wasm backend (not a test: `node --test` only picks up
 * *.test.js). Usage, after `npx tsc -p tsconfig.json`:
 *   node dist/test/nn-measure.js step            ConvNet-3 w128, batch 256, 28x28x1: seconds per SGD step
 *   node dist/test/nn-measure.js mnist [epochs]  ConvNet-3 on the full MNIST training set, reference
 *                                                 protocol (lr 0.01, momentum 0.9, wd 5e-4, batch 256), test accuracy
 */
import { performance } from 'node:perf_hooks';
import { loadDataset } from '../src/data/index.js';
import { normalizeInPlace } from '../src/data/normalize.js';
import { fromNchw } from '../src/nn/data.js';
import { disposeTrainState, initTrainState, train } from '../src/nn/train.js';
import { buildModel } from '../src/nn/zoo.js';
import { createRng } from '../src/util/rng.js';
import { setupBackend } from './nn-backend.js';

async function measureStep(): Promise<void> {
  const n = 256 * 6;
  const rng = createRng('measure');
  const x = new Float32Array(n * 28 * 28).map(() => rng.normal());
  const y = Int32Array.from({ length: n }, (_, i) => i % 10);
  const model = buildModel('convnet', { channels: 1, height: 28, width: 28, classes: 10 });
  const times: number[] = [];
  const cpu: number[] = [];
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  const state = await train(
    model,
    fromNchw(x, y, [n, 1, 28, 28]),
    null,
    { epochs: 1, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch: 256 },
    rng.child('train'),
    initTrainState(model, rng.child('init')),
    {
      onStep: () => {
        const now = performance.now();
        times.push((now - last) / 1000);
        last = now;
        // CPU seconds of this (single-threaded) process: what a step costs when the machine is shared.
        const c = process.cpuUsage(lastCpu);
        cpu.push((c.user + c.system) / 1e6);
        lastCpu = process.cpuUsage();
      },
    },
  );
  disposeTrainState(state);
  const steady = times.slice(1);
  const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
  const cpuMean = cpu.slice(1).reduce((a, b) => a + b, 0) / steady.length;
  console.log(
    `ConvNet-3 w128 batch 256 28x28x1: first step ${times[0].toFixed(2)} s, then ${mean.toFixed(2)} s/step wall ` +
      `(${steady.map((t) => t.toFixed(2)).join(', ')}), ${cpuMean.toFixed(2)} s/step CPU`,
  );
}

async function measureMnist(epochs: number): Promise<void> {
  const d = await loadDataset({ name: 'mnist' });
  normalizeInPlace(d.trainX, d.channels, d.height, d.width, d);
  normalizeInPlace(d.testX, d.channels, d.height, d.width, d);
  const trainSet = fromNchw(d.trainX, d.trainY, [d.trainY.length, 1, 28, 28]);
  const testSet = fromNchw(d.testX, d.testY, [d.testY.length, 1, 28, 28]);
  const model = buildModel('convnet', { channels: 1, height: 28, width: 28, classes: 10 });
  const rng = createRng('measure-mnist');
  const t0 = performance.now();
  const state = await train(
    model,
    trainSet,
    testSet,
    { epochs, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch: 256 },
    rng.child('train'),
    initTrainState(model, rng.child('init')),
    {
      onStep: (e, s, steps, loss) => {
        if (s % 20 === 0 || s === steps) console.log(`epoch ${e} step ${s}/${steps} loss ${loss.toFixed(4)} ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      },
    },
  );
  const c = state.curves;
  console.log(
    `MNIST ConvNet-3, ${epochs} epoch(s) on ${trainSet.n} images: train loss ${c.trainLoss.map((v) => v.toFixed(4)).join(', ')}, ` +
      `train acc ${c.trainAccuracy.map((v) => v.toFixed(4)).join(', ')}, test acc ${c.testAccuracy.at(-1)?.toFixed(4)}, ` +
      `${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  disposeTrainState(state);
}

const backend = await setupBackend();
console.log(`backend ${backend}`);
const what = process.argv[2] ?? 'step';
if (what === 'step') await measureStep();
else if (what === 'mnist') await measureMnist(Number(process.argv[3] ?? 1));
else throw new Error(`unknown measurement '${what}' (step | mnist)`);
