/**
 * Our wasm GatherV2 (src/engine/kernels/gather.ts) against the stock wasm kernel, side by side in one
 * process (the two registrations swapped between repeats), on what calls it: the filter flip of
 * Conv2DBackpropInput, a DSA augmentation of an evaluation batch (src/nn/sampler.ts gathers every pixel's
 * bilinear taps; one call applies one op family, so 'scale' alone is timed too), one evaluation training step with DSA (ConvNet-w32, batch 256, 28x28x1: the 1000-epoch
 * evaluations of the SRe2L studies), and the MetaDD terms' pixel gradient for one chunk of 10 images
 * through the study's three auxiliaries (ConvNet-w32, LeNet, ResNet-18-w16, gap heads).
 *
 *   node dist/bench/gather.js [--repeats N]
 */
import * as tf from '@tensorflow/tfjs-core';
import { performance } from 'node:perf_hooks';
import { initBackend, originalKernel } from '../src/engine/index.js';
import { flipTranspose } from '../src/engine/kernels/conv2d_backprop_input.js';
import { registerGather } from '../src/engine/kernels/gather.js';
import { metaddExtraLoss } from '../src/distill/metadd/extra.js';
import { buildModel } from '../src/nn/index.js';
import { fromNchw } from '../src/nn/data.js';
import { dsa } from '../src/nn/dsa.js';
import { disposeTrainState, initTrainState, train } from '../src/nn/train.js';
import { createRng } from '../src/util/rng.js';
import { BUDGET_AUX, randomAuxNets } from './aux-nets.js';
import { median } from './plan.js';

const i = process.argv.indexOf('--repeats');
const repeats = i >= 0 ? Number(process.argv[i + 1]) : 7;

function useStock(stock: boolean): void {
  if (!stock) return registerGather();
  const original = originalKernel(tf.GatherV2, 'wasm');
  if (original === undefined) throw new Error('no stock GatherV2');
  tf.unregisterKernel(tf.GatherV2, 'wasm');
  tf.registerKernel(original);
}

interface Workload {
  name: string;
  /**
   * One timed run in ms. `draw` seeds its random draws: both kernels get the same draws in a repeat, since
   * which DSA transforms a draw picks changes the time far more than the gather does.
   */
  run(draw: number): Promise<number>;
}

/** `fn` must return nothing: tf.tidy walks what its callback returns, and a large typed array costs ~100 ms. */
function timed(fn: () => void): Promise<number> {
  const t0 = performance.now();
  fn();
  return Promise.resolve(performance.now() - t0);
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const rng = createRng('bench-gather');
  const input = { channels: 1, height: 28, width: 28, classes: 10 };
  const filter = tf.randomNormal([3, 3, 128, 128]) as tf.Tensor4D;
  const batch = tf.randomNormal([256, 28, 28, 1]) as tf.Tensor4D;
  const images = new Float32Array(256 * 28 * 28).map(() => rng.normal());
  const labels = Int32Array.from({ length: 256 }, (_, k) => k % 10);
  const data = fromNchw(images, labels, [256, 1, 28, 28]);
  const evalModel = buildModel({ name: 'convnet', width: 32 }, input);
  const nets = randomAuxNets(BUDGET_AUX, input);
  const extra = metaddExtraLoss(nets, { lambdaAi: 1, lambdaVar: 1 });
  const chunk = tf.randomNormal([10, 28, 28, 1]) as tf.Tensor4D;
  const chunkLabels = Int32Array.from({ length: 10 }, (_, k) => k);

  const workloads: Workload[] = [
    { name: 'filter flip, 3x3x128x128', run: () => timed(() => tf.tidy(() => void flipTranspose(filter).dataSync())) },
    // One DSA call applies one op family, and only scale, rotate and crop resample (gather); scale alone
    // measures that path on every call.
    { name: "DSA 'scale' of 256 images 28x28x1", run: (draw) => timed(() => tf.tidy(() => void dsa(batch, rng.child(`dsa-${draw}`), { strategy: 'scale' }).dataSync())) },
    { name: 'DSA (all six op families) of 256 images 28x28x1', run: (draw) => timed(() => tf.tidy(() => void dsa(batch, rng.child(`dsa-${draw}`)).dataSync())) },
    {
      name: 'evaluation step with DSA, ConvNet-w32, batch 256',
      run: async (draw) => {
        const state = initTrainState(evalModel, createRng('init'));
        const t0 = performance.now();
        const out = await train(evalModel, data, null, { epochs: 1, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch: 256, augment: 'dsa' }, createRng(`t${draw}`), state);
        const ms = performance.now() - t0;
        disposeTrainState(out);
        return ms;
      },
    },
    {
      name: 'MetaDD terms, pixel gradient of 10 images, 3 auxiliaries',
      run: () =>
        timed(() =>
          tf.tidy(() => {
            tf.grad((x: tf.Tensor) => extra.compute(x as tf.Tensor4D, chunkLabels, { iteration: 0, step: 0, globalStep: 0 }).total)(chunk).dataSync();
          }),
        ),
    },
  ];

  console.log(`gather: stock wasm GatherV2 against ours, median of ${repeats} (alternating), ms`);
  console.log('| workload | stock (ms) | ours (ms) | ratio |');
  console.log('|---|---:|---:|---:|');
  for (const w of workloads) {
    const times: Record<'stock' | 'ours', number[]> = { stock: [], ours: [] };
    for (const stock of [true, false]) {
      useStock(stock);
      await w.run(-1); // warm-up
    }
    for (let r = 0; r < repeats; r++) {
      for (const stock of r % 2 === 0 ? [true, false] : [false, true]) {
        useStock(stock);
        times[stock ? 'stock' : 'ours'].push(await w.run(r));
      }
    }
    useStock(false);
    const s = median(times.stock);
    const o = median(times.ours);
    console.log(`| ${w.name} | ${s.toFixed(1)} | ${o.toFixed(1)} | ${(s / o).toFixed(2)}x |`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
