/**
 * The MetaDD terms' pixel gradient per image against `metadd.chunk` (images per tape), and the peak RSS
 * of a process that runs it: a whole set of 100 images 28x28x1 (IPC 10, 10 classes) differentiated chunk by
 * chunk, as the driver does, through the 2-core budget's auxiliaries (ConvNet-w32, LeNet, ResNet-18-w16,
 * gap heads) or, with `--paper`, the paper's four at their default widths (ConvNet-3, ResNet-18, VGG-11,
 * AlexNet). Each chunk size runs in a child process of its own, so each peak is its own.
 *
 *   node dist/bench/metadd-chunk.js [--chunks 10,25,50,100] [--repeats 3] [--paper]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/index.js';
import { rowChunks } from '../src/distill/chunks.js';
import { metaddExtraLoss } from '../src/distill/metadd/extra.js';
import { BUDGET_AUX, PAPER_AUX, randomAuxNets } from './aux-nets.js';
import { median } from './plan.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const paper = process.argv.includes('--paper');
const repeats = Number(arg('repeats', '3'));
const one = arg('one', '');
const SET = 100;

/** In the child: the gradient of the terms over the whole set, chunk by chunk, `repeats` times after a warm-up. */
async function measure(chunk: number): Promise<void> {
  await initBackend('wasm');
  const input = { channels: 1, height: 28, width: 28, classes: 10 };
  const nets = randomAuxNets(paper ? PAPER_AUX : BUDGET_AUX, input);
  const extra = metaddExtraLoss(nets, { lambdaAi: 1, lambdaVar: 1 }, chunk);
  const set = tf.randomNormal([SET, 28, 28, 1]) as tf.Tensor4D;
  const labels = Int32Array.from({ length: SET }, (_, k) => k % 10);
  const info = { iteration: 0, step: 0, globalStep: 0 };
  const pass = (): void => {
    for (const { start, end, share } of rowChunks(SET, chunk)) {
      tf.tidy(() => {
        const x = tf.slice(set, [start, 0, 0, 0], [end - start, -1, -1, -1]);
        const y = labels.subarray(start, end);
        void tf.mul(tf.grad((xc: tf.Tensor) => extra.compute(xc as tf.Tensor4D, y, info).total)(x), share).dataSync();
      });
    }
  };
  pass();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    pass();
    times.push((performance.now() - t0) / SET);
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(`| ${chunk} | ${median(times).toFixed(1)} | ${times.map((t) => t.toFixed(1)).join(', ')} | ${rss.toFixed(0)} |`);
}

if (one) {
  await measure(Number(one));
} else {
  const chunks = arg('chunks', '10,25,50,100').split(',').map(Number);
  console.log(`metadd-chunk: the terms' pixel gradient over ${SET} images 28x28x1 through ${paper ? "the paper's four auxiliaries" : "the budget's three auxiliaries"}, median of ${repeats} after a warm-up; each chunk size in its own process`);
  console.log('| chunk | ms per image | runs (ms per image) | peak RSS (MB) |');
  console.log('|---:|---:|---|---:|');
  const self = fileURLToPath(import.meta.url);
  for (const c of chunks) {
    const r = spawnSync(process.execPath, [self, '--one', String(c), '--repeats', String(repeats), ...(paper ? ['--paper'] : [])], { encoding: 'utf8' });
    if (r.status === 0) process.stdout.write(r.stdout);
    else console.log(`| ${c} | failed | ${(r.stderr.trim().split('\n').find((l) => /Error|abort|memory/i.test(l)) ?? `exit ${r.status}`).slice(0, 120)} | |`);
  }
}
