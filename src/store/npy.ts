import { readFileSync, writeFileSync } from 'node:fs';

/**
 * NumPy `.npy` (format 1.0/2.0/3.0) reading and writing, little-endian, C order.
 * Hand-written: the npm packages that read `.npy` do not write it, and ours must be readable by numpy.
 */
export type NpyDtype = 'float32' | 'float64' | 'int32' | 'uint8' | 'int64';
export type NpyData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const DESCR: Record<NpyDtype, string> = {
  float32: '<f4',
  float64: '<f8',
  int32: '<i4',
  uint8: '|u1',
  int64: '<i8',
};
const BYTES: Record<NpyDtype, number> = { float32: 4, float64: 8, int32: 4, uint8: 1, int64: 8 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  return 'int64';
}

export function encodeNpy(data: NpyData, shape: number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(`npy: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`);
  }
  const dtype = dtypeOf(data);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that magic(6) + version(2) + length(2) + header + '\n' is a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(buf: Buffer, source = '<buffer>'): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) {
    throw new Error(`${source}: not a .npy file (missing the \\x93NUMPY magic bytes)`);
  }
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  if (headerStart + headerLen > buf.length) throw new Error(`${source}: truncated .npy header`);
  const header = buf.subarray(headerStart, headerStart + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${source}: malformed .npy header: ${header.trim()}`);
  }
  if (fortran === 'True') throw new Error(`${source}: Fortran-ordered .npy arrays are not supported; save with C order`);
  const dtype = (Object.keys(DESCR) as NpyDtype[]).find((d) => DESCR[d] === descr || DESCR[d] === descr.replace('|', '<'));
  if (!dtype) {
    throw new Error(`${source}: unsupported .npy dtype ${descr} (expected one of ${Object.values(DESCR).join(', ')})`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = headerStart + headerLen;
  const expected = count * BYTES[dtype];
  if (buf.length - offset !== expected) {
    throw new Error(`${source}: .npy data holds ${buf.length - offset} bytes, expected ${expected} for shape [${shape.join(', ')}] ${dtype}`);
  }
  // Copy into an aligned buffer: the data offset is not guaranteed to be aligned for the element size.
  const raw = new Uint8Array(expected);
  raw.set(buf.subarray(offset, offset + expected));
  const data: NpyData =
    dtype === 'float32' ? new Float32Array(raw.buffer)
    : dtype === 'float64' ? new Float64Array(raw.buffer)
    : dtype === 'int32' ? new Int32Array(raw.buffer)
    : dtype === 'int64' ? new BigInt64Array(raw.buffer)
    : raw;
  return { dtype, shape, data };
}

export function readNpy(path: string): NpyArray {
  return decodeNpy(readFileSync(path), path);
}

export function writeNpy(path: string, data: NpyData, shape: number[]): void {
  writeFileSync(path, encodeNpy(data, shape));
}
