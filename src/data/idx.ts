import { gunzipSync } from 'node:zlib';
import { DatasetSourceError, readSourceFile } from './files.js';

/**
 * The IDX format of the MNIST distribution (http://yann.lecun.com/exdb/mnist/):
 * bytes 0-1 zero, byte 2 the element type, byte 3 the number of dimensions, then one big-endian
 * uint32 size per dimension, then the elements, big-endian, C order. Files ending in `.gz` are gunzipped.
 */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

const TYPE_CODES: Record<number, IdxDtype> = {
  0x08: 'uint8',
  0x09: 'int8',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};
const SIZES: Record<IdxDtype, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Validate the header and the data length against it, without decoding the elements. */
export function parseIdxHeader(buf: Uint8Array, source: string): { dtype: IdxDtype; shape: number[]; headerLength: number } {
  if (buf.length < 4) {
    throw new DatasetSourceError(source, `truncated: ${buf.length} bytes, expected at least the 4-byte IDX magic number`);
  }
  const dtype = TYPE_CODES[buf[2]];
  if (buf[0] !== 0 || buf[1] !== 0 || dtype === undefined) {
    throw new DatasetSourceError(
      source,
      `not an IDX file: magic bytes ${hex(buf.subarray(0, 4))}, expected 00 00 <type: 08, 09, 0b, 0c, 0d or 0e> <dimensions>`,
    );
  }
  const ndim = buf[3];
  if (ndim === 0) throw new DatasetSourceError(source, 'IDX header declares 0 dimensions, expected at least 1');
  const headerLength = 4 + 4 * ndim;
  if (buf.length < headerLength) {
    throw new DatasetSourceError(source, `truncated IDX header: ${buf.length} bytes, expected ${headerLength} for ${ndim} dimensions`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) shape.push(view.getUint32(4 + 4 * d, false));
  const expected = shape.reduce((a, b) => a * b, 1) * SIZES[dtype];
  const found = buf.length - headerLength;
  if (found !== expected) {
    const what = found < expected ? 'truncated' : 'trailing bytes';
    throw new DatasetSourceError(
      source,
      `${what}: header declares shape [${shape.join(', ')}] of ${dtype} = ${expected} data bytes, found ${found}`,
    );
  }
  return { dtype, shape, headerLength };
}

export function decodeIdx(buf: Uint8Array, source: string): IdxArray {
  const { dtype, shape, headerLength } = parseIdxHeader(buf, source);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: decodeBigEndian(view, headerLength, count, dtype) };
}

function decodeBigEndian(view: DataView, offset: number, count: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 'int8':
      return new Int8Array(view.buffer, view.byteOffset + offset, count).slice();
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/** Read the raw bytes of an IDX file, gunzipping when the name ends in `.gz`. */
export function readIdxBytes(file: string, expected: string): Buffer {
  const raw = readSourceFile(file, expected);
  if (!file.toLowerCase().endsWith('.gz')) return raw;
  try {
    return gunzipSync(raw);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DatasetSourceError(file, `not valid gzip data (${reason}); expected a gzipped ${expected}`, { cause: err });
  }
}

export function readIdx(file: string, expected = 'an IDX file'): IdxArray {
  return decodeIdx(readIdxBytes(file, expected), file);
}

/** The inverse of `decodeIdx`; used by tests and by users converting arrays to IDX. */
export function encodeIdx(data: IdxData, shape: number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`idx: shape [${shape.join(', ')}] holds ${count} values but the data has ${data.length}`);
  const dtype: IdxDtype =
    data instanceof Uint8Array ? 'uint8'
    : data instanceof Int8Array ? 'int8'
    : data instanceof Int16Array ? 'int16'
    : data instanceof Int32Array ? 'int32'
    : data instanceof Float32Array ? 'float32'
    : 'float64';
  const code = Number(Object.entries(TYPE_CODES).find(([, d]) => d === dtype)?.[0]);
  const headerLen = 4 + 4 * shape.length;
  const buf = Buffer.alloc(headerLen + count * SIZES[dtype]);
  buf[2] = code;
  buf[3] = shape.length;
  shape.forEach((s, d) => buf.writeUInt32BE(s, 4 + 4 * d));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < count; i++) {
    const o = headerLen + i * SIZES[dtype];
    const v = data[i];
    if (dtype === 'uint8') view.setUint8(o, v);
    else if (dtype === 'int8') view.setInt8(o, v);
    else if (dtype === 'int16') view.setInt16(o, v, false);
    else if (dtype === 'int32') view.setInt32(o, v, false);
    else if (dtype === 'float32') view.setFloat32(o, v, false);
    else view.setFloat64(o, v, false);
  }
  return buf;
}
