/**
 * The parts of tfjs-backend-wasm's BackendWasm that our kernels use to read and write tensors where they
 * live, on the backend's own heap (its typings do not export them).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface WasmBackendInternals {
  wasm: {
    asm?: { memory?: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(offset: number): void;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

/** The active backend as the wasm backend; a plain error under any other. */
export function wasmBackend(): WasmBackendInternals {
  const backend = tf.backend() as unknown as Partial<WasmBackendInternals>;
  // Reached through the public kernel names only on wasm, but some helpers are exported: say so plainly
  // when they are called under another backend.
  if (backend.wasm === undefined) {
    throw new Error('metadd engine: this kernel runs on the wasm backend only (the active backend has no wasm heap)');
  }
  return backend as WasmBackendInternals;
}

/** The backend's heap. Views on it must be made after the last allocation: a growing heap detaches them. */
export function wasmMemory(backend: WasmBackendInternals): WebAssembly.Memory {
  const memory = backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error('metadd engine: the tfjs wasm backend does not expose its memory (Module.asm.memory); tfjs-backend-wasm 4.x is required');
  }
  return memory;
}

/** The heap byte offset of a tensor's data. */
export function heapByteOffset(backend: WasmBackendInternals, t: tf.TensorInfo): number {
  const info = backend.dataIdMap.get(t.dataId);
  if (info === undefined) throw new Error('metadd engine: tensor data is not on the wasm backend');
  return info.memoryOffset;
}
