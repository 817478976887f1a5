/**
 * Training steps of every model-zoo architecture at its default width, through the evaluation stages' own
 * `train` (forward, backward to every parameter, SGD with momentum and weight decay) on a batch of
 * CIFAR-shaped images (32x32x3, 10 classes): what an evaluation model costs per step on this backend,
 * architecture against architecture, and the peak RSS of the process that trained it. Each architecture
 * runs in a child process of its own, so each peak is its own. `--micro N` trains with micro-batches of N
 * images (train.ts `microBatch`, the spec's `eval.micro_batch`).
 *
 *   node dist/bench/zoo.js [--batch N] [--repeats N] [--arch name,name] [--micro N]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { initBackend } from '../src/engine/index.js';
import { buildModel } from '../src/nn/index.js';
import { fromNchw } from '../src/nn/data.js';
import { disposeTrainState, initTrainState, train } from '../src/nn/train.js';
import { ARCH_NAMES, type ArchName } from '../src/nn/types.js';
import { createRng } from '../src/util/rng.js';
import { median } from './plan.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const batch = Number(arg('batch', '16'));
const repeats = Number(arg('repeats', '3'));
const micro = arg('micro', '');
const one = arg('one', '');

/** In the child: `repeats + 1` one-step epochs on `batch` random images; the first is the warm-up. */
async function measure(name: ArchName): Promise<void> {
  await initBackend();
  const input = { channels: 3, height: 32, width: 32, classes: 10 };
  const model = buildModel(name, input);
  const rng = createRng(`bench-zoo-${name}`);
  const x = new Float32Array(batch * 3 * 32 * 32).map(() => rng.normal());
  const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const data = fromNchw(x, y, [batch, 3, 32, 32]);
  const times: number[] = [];
  let t0 = performance.now();
  const state = await train(
    model,
    data,
    null,
    { epochs: repeats + 1, lr: 0.01, momentum: 0.9, weightDecay: 5e-4, batch, microBatch: micro ? Number(micro) : undefined },
    rng.child('train'),
    initTrainState(model, rng.child('init')),
    {
      onEpoch: () => {
        const t = performance.now();
        times.push((t - t0) / 1000);
        t0 = t;
      },
    },
  );
  disposeTrainState(state);
  const steps = times.slice(1);
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(`| ${name} | ${model.paramCount().toLocaleString('en-US')} | ${median(steps).toFixed(2)} | ${steps.map((t) => t.toFixed(2)).join(', ')} | ${rss.toFixed(0)} |`);
}

if (one) {
  await measure(one as ArchName);
} else {
  const archs = arg('arch', ARCH_NAMES.join(',')).split(',');
  console.log(`zoo: one SGD step of ${batch} images 32x32x3${micro ? ` in micro-batches of ${micro}` : ''} per architecture (default width), median of ${repeats} after a warm-up; each in its own process`);
  console.log('| architecture | parameters | step median (s) | steps (s) | peak RSS (MB) |');
  console.log('|---|---:|---:|---|---:|');
  const self = fileURLToPath(import.meta.url);
  for (const name of archs) {
    const args = [self, '--one', name, '--batch', String(batch), '--repeats', String(repeats), ...(micro ? ['--micro', micro] : [])];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status === 0) process.stdout.write(r.stdout);
    else console.log(`| ${name} | | failed | ${(r.stderr.trim().split('\n').find((l) => /Error|abort|memory/i.test(l)) ?? `exit ${r.status}`).slice(0, 120)} | |`);
  }
}
