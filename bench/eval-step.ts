/**
 * One evaluation training step as the evaluation stages run it (src/nn/train.ts `train`: forward,
 * backward to every parameter, SGD with momentum and weight decay), on a batch of 28x28x1 images: what a
 * 1000-epoch evaluation of a Fashion-MNIST set costs per step, with and without DSA augmentation.
 * Median of the repeats after a warm-up step. To compare two commits, run it in a checkout of each,
 * alternating (docs/benchmarks.md).
 *
 *   node dist/bench/eval-step.js [--arch convnet] [--width 32] [--batch 256] [--repeats 7]
 */
import { performance } from 'node:perf_hooks';
import { initBackend } from '../src/engine/index.js';
import { buildModel } from '../src/nn/index.js';
import { fromNchw } from '../src/nn/data.js';
import { disposeTrainState, initTrainState, train } from '../src/nn/train.js';
import type { ArchName } from '../src/nn/types.js';
import { createRng } from '../src/util/rng.js';
import { median } from './plan.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const arch = arg('arch', 'convnet') as ArchName;
const width = Number(arg('width', '32'));
const batch = Number(arg('batch', '256'));
const repeats = Number(arg('repeats', '7'));

await initBackend('wasm');
const input = { channels: 1, height: 28, width: 28, classes: 10 };
const model = buildModel(arch === 'lenet' || arch === 'mlp' ? arch : { name: arch, width }, input);
const rng = createRng('bench-eval-step');
const images = new Float32Array(batch * 28 * 28).map(() => rng.normal());
const data = fromNchw(images, Int32Array.from({ length: batch }, (_, k) => k % 10), [batch, 1, 28, 28]);
for (const augment of ['none', 'dsa'] as const) {
  const times: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const start = initTrainState(model, createRng(`init-${r}`));
    const t0 = performance.now();
    const end = await train(model, data, null, { epochs: 1, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch, augment }, createRng(`train-${r}`), start);
    if (r > 0) times.push(performance.now() - t0);
    disposeTrainState(end);
  }
  console.log(`eval step ${arch} w${width} batch ${batch} augment ${augment}: median ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
}
