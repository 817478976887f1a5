/**
 * Kernel benchmarks for the metadd engine on tfjs-wasm: conv2d forward,
 * backprop-input and backprop-filter at the three ConvNet-3 layer shapes
 * (batch 256, 28x28x1 input, width 128 and 32) and a full ConvNet-3 training
 * step. Medians of several repeats after a warm-up call.
 *
 *   node dist/bench/kernels.js [--batch N] [--repeats N] [--json] [--torch]
 *
 * --torch also runs bench/torch_kernels.py with bench/.venv/bin/python (see
 * bench/setup-torch.sh) and prints a side-by-side Markdown table.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/index.js';
import { conv2dBackpropInputXnnpack, SIMD_MAX_INPUT_CHANNELS } from '../src/engine/kernels/conv2d_backprop_input.js';
import { buildModel, crossEntropy } from '../src/nn/index.js';
import { createRng } from '../src/util/rng.js';
import { makeConvNet3, trainStep } from './convnet3.js';
import { xnnpackBackpropFilter } from './xnnpack_backprop_filter.js';

export interface BenchResult {
  name: string;
  medianMs: number;
  timesMs: number[];
  repeats: number;
  /** Useful work in GFLOP (2 per multiply-add), when meaningful. */
  gflop?: number;
}

export interface BenchOptions {
  batch?: number;
  repeats?: number;
  widths?: number[];
  /** Also time the XNNPACK routes the engine used before its SIMD kernels (backprop-filter, and backprop-input where the kernel runs). */
  previous?: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `fn` on inputs made fresh for every call by `setup` (untimed).
 * Fresh matters: XNNPACK caches the packed right-hand operand of a product
 * (and the packed filter of a convolution) by tensor id, and in training
 * those operands are new every step; reusing them would time the cache.
 * wasm kernels run synchronously, so wall time around the call is kernel time.
 */
function timeIt<I extends tf.TensorContainer>(
  name: string,
  setup: () => I,
  fn: (inputs: I) => tf.TensorContainer | number,
  repeats: number,
  gflop?: number,
): BenchResult {
  const times: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const inputs = setup();
    const t0 = performance.now();
    const out = fn(inputs);
    const dt = performance.now() - t0;
    if (i > 0) times.push(dt); // call 0 warms up: heap growth, operator creation
    tf.dispose(out as tf.TensorContainer);
    tf.dispose(inputs);
  }
  return { name, medianMs: median(times), timesMs: times, repeats, gflop };
}

const LAYERS = [
  { name: 'l1', hw: 28, cin: 1, pad: 3 },
  { name: 'l2', hw: 16, cin: -1, pad: 1 },
  { name: 'l3', hw: 8, cin: -1, pad: 1 },
];

export async function benchKernels(opts: BenchOptions = {}): Promise<BenchResult[]> {
  const batch = opts.batch ?? 256;
  const repeats = opts.repeats ?? 5;
  const widths = opts.widths ?? [128, 32];
  await initBackend('wasm');
  const results: BenchResult[] = [];
  for (const width of widths) {
    for (const l of LAYERS) {
      const cin = l.cin < 0 ? width : l.cin;
      const out = l.hw + 2 * l.pad - 2;
      const gflop = (2 * batch * out * out * 9 * cin * width) / 1e9;
      const pad: tf.backend_util.ExplicitPadding = [[0, 0], [l.pad, l.pad], [l.pad, l.pad], [0, 0]];
      const xShape: [number, number, number, number] = [batch, l.hw, l.hw, cin];
      const wShape: [number, number, number, number] = [3, 3, cin, width];
      const dyShape: [number, number, number, number] = [batch, out, out, width];
      const fresh = (): { x: tf.Tensor4D; w: tf.Tensor4D; dy: tf.Tensor4D } => ({
        x: tf.randomNormal(xShape),
        w: tf.randomNormal(wShape),
        dy: tf.randomNormal(dyShape),
      });
      const tag = `w${width}/${l.name}`;
      results.push(timeIt(`${tag}/conv2d`, fresh, ({ x, w }) => tf.conv2d(x, w, 1, pad), repeats, gflop));
      results.push(timeIt(`${tag}/backprop_input`, fresh, ({ w, dy }) => tf.conv2dTranspose(dy, w, xShape, 1, pad), repeats, gflop));
      if ((opts.previous ?? true) && cin <= SIMD_MAX_INPUT_CHANNELS) {
        results.push(
          timeIt(`${tag}/backprop_input[xnnpack]`, fresh, ({ w, dy }) => conv2dBackpropInputXnnpack(xShape, dy, w, 1, pad), repeats, gflop),
        );
      }
      const attrs = { strides: 1, pad, dataFormat: 'NHWC', filterShape: wShape } as unknown as tf.NamedAttrMap;
      results.push(
        timeIt(`${tag}/backprop_filter`, fresh, ({ x, dy }) => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs) as tf.Tensor, repeats, gflop),
      );
      if (opts.previous ?? true) {
        results.push(
          timeIt(`${tag}/backprop_filter[xnnpack]`, fresh, ({ x, dy }) => xnnpackBackpropFilter(x, dy, wShape, pad), repeats, gflop),
        );
      }
    }
    const net = makeConvNet3({ width });
    const xs = tf.randomNormal([batch, 28, 28, 1]) as tf.Tensor4D;
    const classIds = tf.randomUniform([batch], 0, 10, 'int32') as tf.Tensor1D;
    const labels = tf.oneHot(classIds, 10) as tf.Tensor2D;
    const zoo = zooConvNet3(width);
    // The parameters are new tensors after every update, as in training.
    results.push(timeIt(`w${width}/train_step`, () => [], () => trainStep(net, xs, labels, 0.01), repeats));
    results.push(timeIt(`w${width}/train_step[zoo]`, () => [], () => zooTrainStep(zoo, xs, classIds, 0.01), repeats));
    tf.dispose([xs, labels, classIds, ...net.params, ...Object.values(zoo.params)]);
  }
  return results;
}

interface ZooNet {
  model: ReturnType<typeof buildModel>;
  params: Record<string, tf.Tensor>;
}

/** The framework's own ConvNet-3 (src/nn, what pretrain and eval train), for the `train_step[zoo]` rows. */
function zooConvNet3(width: number): ZooNet {
  const model = buildModel({ name: 'convnet', width }, { channels: 1, height: 28, width: 28, classes: 10 });
  return { model, params: model.init(createRng('bench-kernels')) };
}

/** One plain SGD step of the zoo model, like `trainStep`; the parameters are replaced by new tensors. */
function zooTrainStep(net: ZooNet, x: tf.Tensor4D, labels: tf.Tensor1D, lr: number): number {
  const names = Object.keys(net.params);
  const { value, grads } = tf.tidy(() =>
    tf.valueAndGrads((...ps: tf.Tensor[]) =>
      crossEntropy(net.model.forward(Object.fromEntries(names.map((n, i) => [n, ps[i]])), x, { training: true }), labels),
    )(names.map((n) => net.params[n])),
  );
  const loss = value.dataSync()[0];
  names.forEach((n, i) => {
    const next = tf.tidy(() => tf.sub(net.params[n], tf.mul(grads[i], lr)));
    net.params[n].dispose();
    net.params[n] = next;
  });
  tf.dispose([value, ...grads]);
  return loss;
}

interface TorchResult {
  name: string;
  median_ms: number;
}

function runTorch(batch: number, repeats: number): { results: TorchResult[]; torch: string } | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/bench/kernels.js -> repository root is two levels up.
  const root = path.resolve(here, '..', '..');
  const py = path.join(root, 'bench', '.venv', 'bin', 'python');
  if (!existsSync(py)) {
    console.error(`no ${py}: run bench/setup-torch.sh first`);
    return undefined;
  }
  const out = execFileSync(py, [path.join(root, 'bench', 'torch_kernels.py'), String(batch), String(repeats)], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  return JSON.parse(out) as { results: TorchResult[]; torch: string };
}

function markdown(ours: BenchResult[], torch: TorchResult[] | undefined): string {
  const byName = new Map((torch ?? []).map((r) => [r.name, r.median_ms]));
  const lines = ['| kernel | tfjs-wasm median ms | GFLOP/s | PyTorch 1-thread ms | ratio (ours / torch) |', '|---|---:|---:|---:|---:|'];
  for (const r of ours) {
    // Variant rows (`name[variant]`) compare against PyTorch's row of the same operation.
    const t = byName.get(r.name) ?? byName.get(r.name.replace(/\[[^\]]*\]$/, ''));
    const rate = r.gflop !== undefined ? (r.gflop / (r.medianMs / 1000)).toFixed(1) : '';
    lines.push(
      `| ${r.name} | ${r.medianMs.toFixed(1)} | ${rate} | ${t !== undefined ? t.toFixed(1) : ''} | ${t !== undefined ? (r.medianMs / t).toFixed(2) : ''} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const num = (flag: string, dflt: number): number => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const batch = num('--batch', 256);
  const repeats = num('--repeats', 5);
  const ours = await benchKernels({ batch, repeats });
  const torch = args.includes('--torch') ? runTorch(batch, repeats) : undefined;
  if (args.includes('--json')) {
    console.log(JSON.stringify({ ours, torch }, null, 1));
    return;
  }
  console.log(`machine: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, node ${process.version}, tfjs ${tf.version_core}` +
    (torch ? `, torch ${torch.torch}` : '') + `, batch ${batch}, ${repeats} repeats, ${new Date().toISOString()}`);
  console.log(markdown(ours, torch?.results));
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
