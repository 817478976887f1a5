/**
 * Per-kernel profile of one ConvNet-3 training step on the active backend,
 * to find what dominates once the conv kernels are fast.
 *
 *   node dist/bench/profile-step.js [width] [batch] [backend]
 *
 * Kernels run inside our composite kernels are listed too (their time is
 * then counted twice: once in the parent).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/index.js';
import { makeConvNet3, trainStep } from './convnet3.js';

async function main(): Promise<void> {
  const width = Number(process.argv[2] ?? 128);
  const batch = Number(process.argv[3] ?? 256);
  await initBackend(process.argv[4] ?? 'wasm');
  const net = makeConvNet3({ width });
  const x = tf.randomNormal([batch, 28, 28, 1]) as tf.Tensor4D;
  const labels = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32') as tf.Tensor1D, 10) as tf.Tensor2D;
  trainStep(net, x, labels, 0.01); // warm-up
  const t0 = performance.now();
  const info = await tf.profile(() => {
    trainStep(net, x, labels, 0.01);
  });
  const total = performance.now() - t0;
  const agg = new Map<string, { ms: number; n: number; shapes: string }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = agg.get(key) ?? { ms: 0, n: 0, shapes: JSON.stringify(k.outputShapes) };
    e.ms += ms;
    e.n += 1;
    agg.set(key, e);
  }
  const rows = [...agg.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40);
  console.log(`step (profiled) ${total.toFixed(0)} ms, ${info.kernels.length} kernel calls, backend ${tf.getBackend()}`);
  for (const [k, e] of rows) console.log(`${e.ms.toFixed(1).padStart(9)} ms  x${e.n}  ${k} -> ${e.shapes}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
