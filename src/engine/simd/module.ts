/**
 * Our own wasm SIMD kernels (AssemblyScript in ./assembly, compiled by `npm run build:wasm` into
 * dist/src/engine/simd/kernels.wasm), instantiated on the tfjs wasm backend's own memory so that they read
 * and write tensors where they live: no copies in or out. Hand-written because no library offers these
 * reductions in a form tfjs can call, and every formulation through tfjs's XNNPACK kernels repacks a large
 * operand per call (docs/engine.md).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { ConvGeometry } from '../kernels/conv_util.js';
import { heapByteOffset, wasmBackend, wasmMemory, type WasmBackendInternals } from '../wasm-heap.js';

/** The exports of kernels.wasm. Each kernel reads the geometry of the last `setGeometry` call. */
export interface SimdKernels {
  setGeometry(
    inH: number, inW: number, inC: number, outH: number, outW: number, outC: number,
    kh: number, kw: number, sh: number, sw: number, top: number, left: number,
  ): void;
  conv2dBackpropFilter(x: number, dy: number, dw: number, scratch: number, chunk: number, batch: number): void;
  conv2dBackpropFilterScratchBytes(chunk: number): number;
  conv2dBackpropInput(dy: number, w: number, dx: number, scratch: number, batch: number): void;
  conv2dBackpropInputScratchBytes(): number;
}

const WASM_FILE = new URL('./kernels.wasm', import.meta.url);
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();
let compiled: WebAssembly.Module | undefined;

function compile(): WebAssembly.Module {
  if (compiled === undefined) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = new Uint8Array(readFileSync(WASM_FILE));
    } catch (err) {
      throw new Error(
        `metadd engine: ${WASM_FILE.pathname} is missing (${(err as Error).message}); ` +
          'build with `npm run build`, which compiles the AssemblyScript kernels before the TypeScript',
        { cause: err },
      );
    }
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

/** The kernels bound to this backend's heap (one instance per heap), with the geometry `g` set. */
function simdKernels(backend: WasmBackendInternals, g: ConvGeometry): SimdKernels {
  const memory = wasmMemory(backend);
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    const instance = new WebAssembly.Instance(compile(), { env: { memory } });
    kernels = instance.exports as unknown as SimdKernels;
    instances.set(memory, kernels);
  }
  kernels.setGeometry(g.inH, g.inW, g.inC, g.outH, g.outW, g.outC, g.kh, g.kw, g.sh, g.sw, g.top, g.left);
  return kernels;
}

/** The heap offset of a float32 tensor's data. */
function heapOffset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  if (t.dtype !== 'float32') throw new Error(`metadd engine: the SIMD kernels take float32 tensors, got ${t.dtype}`);
  return heapByteOffset(backend, t);
}

/** Runs `fn` with `bytes` of 16-byte-aligned scratch on the heap, freed afterwards. */
function withScratch<T>(backend: WasmBackendInternals, bytes: number, fn: (offset: number) => T): T {
  const raw = backend.wasm._malloc(bytes + 15) >>> 0;
  if (raw === 0) throw new Error(`metadd engine: the wasm heap could not allocate ${bytes} bytes of scratch`);
  try {
    return fn(Math.ceil(raw / 16) * 16);
  } finally {
    backend.wasm._free(raw);
  }
}

/**
 * Runs one SIMD kernel on the active (wasm) backend: the geometry `g` set, the heap offsets of `inputs`
 * resolved (float32 only), a new float32 output of `shape` and the kernel's scratch allocated; returns
 * the output as a tensor.
 */
export function runSimdKernel(
  g: ConvGeometry,
  inputs: tf.TensorInfo[],
  shape: number[],
  scratchBytes: (kernels: SimdKernels) => number,
  run: (kernels: SimdKernels, inputs: number[], out: number, scratch: number) => void,
): tf.Tensor {
  const backend = wasmBackend();
  const kernels = simdKernels(backend, g);
  const offsets = inputs.map((t) => heapOffset(backend, t));
  const out = backend.makeOutput(shape, 'float32');
  withScratch(backend, scratchBytes(kernels), (scratch) => run(kernels, offsets, heapOffset(backend, out), scratch));
  return tf.engine().makeTensorFromTensorInfo(out);
}
