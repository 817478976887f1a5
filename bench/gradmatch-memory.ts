import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/index.js';
import { blockwiseLoss, iterationRng } from '../src/distill/driver.js';
import { createGradientMatching } from '../src/distill/gradmatch.js';
import type { MethodContext } from '../src/distill/method.js';
import { makeRealData } from '../src/distill/real-data.js';
import { createRng } from '../src/util/rng.js';
import { median } from './plan.js';

/**
 * Peak tensor memory and time of one DC image update (L_base and its gradient w.r.t. the set) on one
 * tape against per-class tapes (`DistillMethod.blocks`), at IPC 10, 20 and 50: ConvNet-w32 on 28x28x1
 * random data with 10 classes, 64 real images per class, the backend named on the command line (WASM by
 * default). One tape is not run at IPC 50: there it fills the 4 GB WASM heap and aborts the process,
 * which is why DC and DSA declare blocks. Peak memory is tfjs' `peakBytes` (tensor bytes alive at
 * once), not the heap's high-water mark.
 *
 *   node dist/bench/gradmatch-memory.js [backend] [repeats]
 */
async function main(): Promise<void> {
  const backend = await initBackend(process.argv[2] ?? 'wasm');
  const repeats = Number(process.argv[3] ?? 3);
  const classes = 10;
  const perClass = 80;
  const rng = createRng('bench-gradmatch');
  const x = Float32Array.from({ length: classes * perClass * 28 * 28 }, () => rng.normal());
  const y = Int32Array.from({ length: classes * perClass }, (_, i) => i % classes);
  const real = makeRealData(x, y, { classes, channels: 1, height: 28, width: 28 });
  const method = createGradientMatching({
    variant: 'dc',
    lr: 0.1,
    momentum: 0.5,
    batchReal: 64,
    init: 'real',
    arch: { name: 'convnet', width: 32 },
    outerLoop: 1,
    innerLoop: 0,
    lrNet: 0.01,
    momentumNet: 0.5,
    batchTrain: 256,
    dataset: 'fashion-mnist',
  });
  const blocks = method.blocks;
  if (!blocks) throw new Error('dc declares no loss blocks');
  console.log(`machine: ${cpus()[0]?.model ?? '?'} x${cpus().length}, node ${process.version}, backend ${backend}, ${new Date().toISOString()}`);
  console.log('| IPC | tapes | peak tensor MB | s per image update (median) | runs (s) |');
  console.log('|---:|:---|---:|---:|:---|');
  for (const ipc of [10, 20, 50]) {
    const ctx: MethodContext = { real, ipc, log: () => undefined };
    const info = { iteration: 0, step: 0, globalStep: 0 };
    const state = method.beginIteration(ctx, 0, iterationRng('bench', 0));
    // As the driver does: the real-batch gradients outlive the tidy that computes them.
    const prepared = tf.tidy(() => method.prepare(ctx, state, info, createRng('bench-step')) as unknown as tf.TensorContainer) as unknown as ReturnType<typeof method.prepare>;
    const synRng = createRng(`bench-syn-${ipc}`);
    const syn = tf.tensor4d(Float32Array.from({ length: classes * ipc * 28 * 28 }, () => synRng.normal()), [classes * ipc, 28, 28, 1]);
    const ways: [string, () => tf.Tensor[]][] = [['per class', () => Object.values(blockwiseLoss(blocks, ctx, state, prepared, syn, info))]];
    if (ipc < 50) {
      ways.unshift(['one', () => { const r = tf.valueAndGrad((s: tf.Tensor) => method.loss(ctx, state, prepared, s as tf.Tensor4D, new Int32Array(0), info))(syn); return [r.value, r.grad]; }]);
    }
    for (const [name, run] of ways) {
      const times: number[] = [];
      let peak = 0;
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        const profile = await tf.profile(() => {
          const out = run();
          out[0].dataSync();
          tf.dispose(out);
        });
        times.push((performance.now() - t0) / 1000);
        peak = Math.max(peak, profile.peakBytes);
      }
      console.log(`| ${ipc} | ${name} | ${(peak / 2 ** 20).toFixed(0)} | ${median(times).toFixed(2)} | ${times.map((t) => t.toFixed(2)).join(', ')} |`);
    }
    tf.dispose([syn, prepared as unknown as tf.TensorContainer]);
    method.endIteration(state);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
