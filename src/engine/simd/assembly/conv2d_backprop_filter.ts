// AssemblyScript, compiled by asc into kernels.wasm (see ../module.ts); tsc and ESLint do not read it.
//
// dW[kh, kw, ci, co] = sum over (b, oh, ow) of x[b, oh*sh + kh - top, ow*sw + kw - left, ci] * dy[b, oh, ow, co]
// for NHWC x and dy; input pixels outside x (the padding) contribute nothing. Pointers are byte offsets into
// the memory this module imports: the tfjs wasm backend's heap, so tensors are read where they live.
//
// As a matrix product, dW [K = KH*KW*Ci, Co] = P^T dy with P the im2col patches [N = B*OH*OW, K]. N is large,
// so the product runs over chunks of positions: each chunk's patches and dy rows are packed into
// cache-resident panels (4 patch columns, 8 dy columns per panel, zero-padded), and an 4x8 tile of the
// result stays in eight v128 accumulators while a chunk streams through it. The sum over positions runs in
// a fixed order (chunk by chunk), so results are deterministic.
import { inC, kh, kw, outC, outH, outW, positionTaps, tapTableBytes } from './geometry';

/** The im2col patches of positions p0 .. p0+count into 4-column panels (zero where a tap reads padding). */
function packPatches(a: usize, taps: usize, chunk: i32, p0: i32, count: i32, x: usize, k4: i32): void {
  memory.fill(a, 0, <usize>(k4 * chunk) << 2);
  const panelStride = <usize>(chunk << 4); // bytes between the panels of consecutive 4-column groups
  const t = kh * kw;
  for (let q = 0; q < count; q++) {
    positionTaps(taps, p0 + q);
    for (let tap = 0; tap < t; tap++) {
      const offset = load<i32>(taps + (<usize>tap << 2));
      if (offset < 0) continue;
      const src = x + (<usize>offset << 2);
      const k0 = tap * inC;
      if ((inC & 3) == 0) {
        // k0 is a multiple of 4: whole 4-column groups.
        let dst = a + panelStride * <usize>(k0 >> 2) + (<usize>q << 4);
        for (let c = 0; c < inC; c += 4) {
          v128.store(dst, v128.load(src + (<usize>c << 2)));
          dst += panelStride;
        }
      } else {
        for (let c = 0; c < inC; c++) {
          const k = k0 + c;
          store<f32>(a + panelStride * <usize>(k >> 2) + (<usize>q << 4) + (<usize>(k & 3) << 2), load<f32>(src + (<usize>c << 2)));
        }
      }
    }
  }
}

/** dy rows p0 .. p0+count into 8-column panels, zero-padded to co8 columns. */
function packDy(d: usize, chunk: i32, p0: i32, count: i32, dy: usize, co8: i32): void {
  const panelStride = <usize>(chunk << 5);
  if (count < chunk || outC != co8) memory.fill(d, 0, <usize>(co8 * chunk) << 2);
  const full = outC & ~7;
  for (let q = 0; q < count; q++) {
    const src = dy + ((<usize>((p0 + q) * outC)) << 2);
    let dst = d + (<usize>q << 5);
    for (let c = 0; c < full; c += 8) {
      v128.store(dst, v128.load(src + (<usize>c << 2)));
      v128.store(dst, v128.load(src + (<usize>c << 2), 16), 16);
      dst += panelStride;
    }
    for (let c = full; c < outC; c++) {
      store<f32>(d + panelStride * <usize>(c >> 3) + (<usize>q << 5) + (<usize>(c & 7) << 2), load<f32>(src + (<usize>c << 2)));
    }
  }
}

/** acc[4 x 8] (row stride co8 floats) += A-panel^T [4 x n] B-panel [n x 8]. */
function tile4x8(acc: usize, rowStride: usize, ap: usize, bp: usize, n: i32): void {
  let a0 = v128.load(acc), a1 = v128.load(acc, 16);
  let b0 = v128.load(acc + rowStride), b1 = v128.load(acc + rowStride, 16);
  let c0 = v128.load(acc + 2 * rowStride), c1 = v128.load(acc + 2 * rowStride, 16);
  let e0 = v128.load(acc + 3 * rowStride), e1 = v128.load(acc + 3 * rowStride, 16);
  for (let k = 0; k < n; k++) {
    const d0 = v128.load(bp), d1 = v128.load(bp, 16);
    const x0 = v128.load32_splat(ap);
    a0 = f32x4.add(a0, f32x4.mul(x0, d0));
    a1 = f32x4.add(a1, f32x4.mul(x0, d1));
    const x1 = v128.load32_splat(ap, 4);
    b0 = f32x4.add(b0, f32x4.mul(x1, d0));
    b1 = f32x4.add(b1, f32x4.mul(x1, d1));
    const x2 = v128.load32_splat(ap, 8);
    c0 = f32x4.add(c0, f32x4.mul(x2, d0));
    c1 = f32x4.add(c1, f32x4.mul(x2, d1));
    const x3 = v128.load32_splat(ap, 12);
    e0 = f32x4.add(e0, f32x4.mul(x3, d0));
    e1 = f32x4.add(e1, f32x4.mul(x3, d1));
    ap += 16;
    bp += 32;
  }
  v128.store(acc, a0); v128.store(acc, a1, 16);
  v128.store(acc + rowStride, b0); v128.store(acc + rowStride, b1, 16);
  v128.store(acc + 2 * rowStride, c0); v128.store(acc + 2 * rowStride, c1, 16);
  v128.store(acc + 3 * rowStride, e0); v128.store(acc + 3 * rowStride, e1, 16);
}

/** Bytes of scratch `conv2dBackpropFilter` needs for the geometry set by `setGeometry` and this chunk. */
export function conv2dBackpropFilterScratchBytes(chunk: i32): i32 {
  const k4 = (kh * kw * inC + 3) & ~3;
  const co8 = (outC + 7) & ~7;
  return ((k4 * chunk + co8 * chunk + k4 * co8) << 2) + tapTableBytes();
}

/**
 * Writes dW ([KH, KW, Ci, Co], float32) at `dw` for the geometry set by `setGeometry`. x is [B, H, W, Ci]
 * at `x`, dy [B, OH, OW, Co] at `dy`. `scratch` holds `conv2dBackpropFilterScratchBytes(chunk)` bytes,
 * 16-byte aligned; none of the buffers overlap.
 */
export function conv2dBackpropFilter(x: usize, dy: usize, dw: usize, scratch: usize, chunk: i32, batch: i32): void {
  const k = kh * kw * inC;
  const k4 = (k + 3) & ~3;
  const co8 = (outC + 7) & ~7;
  const a = scratch;
  const d = a + (<usize>(k4 * chunk) << 2);
  const acc = d + (<usize>(co8 * chunk) << 2);
  const taps = acc + (<usize>(k4 * co8) << 2);
  const accRow = <usize>co8 << 2;
  memory.fill(acc, 0, <usize>(k4 * co8) << 2);
  const n = batch * outH * outW;
  for (let p0 = 0; p0 < n; p0 += chunk) {
    const count = min(chunk, n - p0);
    packPatches(a, taps, chunk, p0, count, x, k4);
    packDy(d, chunk, p0, count, dy, co8);
    for (let cb = 0; cb < co8; cb += 8) {
      const bp = d + (<usize>(cb * chunk) << 2);
      for (let kb = 0; kb < k4; kb += 4) {
        tile4x8(acc + <usize>kb * accRow + (<usize>cb << 2), accRow, a + (<usize>(kb * chunk) << 2), bp, count);
      }
    }
  }
  // Drop the padding rows and columns.
  for (let r = 0; r < k; r++) {
    memory.copy(dw + (<usize>(r * outC) << 2), acc + <usize>r * accRow, <usize>outC << 2);
  }
}
