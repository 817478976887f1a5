// AssemblyScript, compiled by asc into kernels.wasm (see ../module.ts); tsc and ESLint do not read it.
//
// dx[b, ih, iw, ci] = sum over (kh, kw, co) of dy[b, oh, ow, co] * W[kh, kw, ci, co], ih = oh*sh + kh - top,
// iw = ow*sw + kw - left, for NHWC dy and dx and a [KH, KW, Ci, Co] filter: the gradient of a convolution
// with respect to its input, for layers with few input channels (a network's first layer, whose input is
// the images). There XNNPACK's route, a forward convolution with Ci output channels, runs below 3 GFLOP/s.
//
// Per output position p, G[p, k] = sum over co of dy[p, co] * W[k, co] (k = (kh*KW + kw)*Ci + ci, K = KH*KW*Ci
// padded to a multiple of 4), then G[p, k] is added to the input pixel tap k reads (col2im). A tile of
// 4 positions x 4 k stays in four v128 accumulators while Co streams through it. Order of the sums is fixed.
import { inC, inH, inW, kh, kw, outC, outH, outW, positionTaps, tapTableBytes } from './geometry';

/** W [K, Co] transposed into [Co, K4], zero-padded: one v128 load gives 4 consecutive k for one co. */
function packFilter(wt: usize, w: usize, k: i32, k4: i32): void {
  memory.fill(wt, 0, <usize>(outC * k4) << 2);
  for (let r = 0; r < k; r++) {
    for (let co = 0; co < outC; co++) {
      store<f32>(wt + ((<usize>(co * k4 + r)) << 2), load<f32>(w + ((<usize>(r * outC + co)) << 2)));
    }
  }
}

/** g[q * k4 + kb .. +4] for the 4 positions at dy row p (q = 0..3) = dy[p + q, :] . wt[:, kb .. kb+4]. */
function tile4(g: usize, dp: usize, wp: usize, k4: i32): void {
  const rowBytes = <usize>outC << 2;
  const wStep = <usize>k4 << 2;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let co = 0; co < outC; co++) {
    const wv = v128.load(wp);
    a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(dp), wv));
    a1 = f32x4.add(a1, f32x4.mul(v128.load32_splat(dp + rowBytes), wv));
    a2 = f32x4.add(a2, f32x4.mul(v128.load32_splat(dp + 2 * rowBytes), wv));
    a3 = f32x4.add(a3, f32x4.mul(v128.load32_splat(dp + 3 * rowBytes), wv));
    dp += 4;
    wp += wStep;
  }
  const gStep = <usize>k4 << 2;
  v128.store(g, a0);
  v128.store(g + gStep, a1);
  v128.store(g + 2 * gStep, a2);
  v128.store(g + 3 * gStep, a3);
}

function tile1(g: usize, dp: usize, wp: usize, k4: i32): void {
  const wStep = <usize>k4 << 2;
  let a0 = f32x4.splat(0);
  for (let co = 0; co < outC; co++) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(dp), v128.load(wp)));
    dp += 4;
    wp += wStep;
  }
  v128.store(g, a0);
}

/** Adds position p's G row (at g) into the pixels of dx its taps read. */
function scatter(dx: usize, g: usize, taps: usize, p: i32): void {
  positionTaps(taps, p);
  const t = kh * kw;
  for (let tap = 0; tap < t; tap++) {
    const offset = load<i32>(taps + (<usize>tap << 2));
    if (offset < 0) continue;
    const dst = dx + (<usize>offset << 2);
    const src = g + (<usize>(tap * inC) << 2);
    for (let c = 0; c < inC; c++) {
      const at = dst + (<usize>c << 2);
      store<f32>(at, load<f32>(at) + load<f32>(src + (<usize>c << 2)));
    }
  }
}

/** Bytes of scratch `conv2dBackpropInput` needs for the geometry set by `setGeometry`. */
export function conv2dBackpropInputScratchBytes(): i32 {
  const k4 = (kh * kw * inC + 3) & ~3;
  return ((outC * k4 + 4 * k4) << 2) + tapTableBytes();
}

/**
 * Writes dx ([B, H, W, Ci], float32) at `dx` from dy [B, OH, OW, Co] at `dy` and the filter at `w`, for the
 * geometry set by `setGeometry`. `scratch` holds `conv2dBackpropInputScratchBytes()` bytes, 16-byte
 * aligned; no buffers overlap.
 */
export function conv2dBackpropInput(dy: usize, w: usize, dx: usize, scratch: usize, batch: i32): void {
  const k = kh * kw * inC;
  const k4 = (k + 3) & ~3;
  const wt = scratch;
  const g = wt + (<usize>(outC * k4) << 2);
  const taps = g + (<usize>(4 * k4) << 2);
  packFilter(wt, w, k, k4);
  memory.fill(dx, 0, <usize>(batch * inH * inW * inC) << 2);
  const n = batch * outH * outW;
  const rowBytes = <usize>outC << 2;
  const n4 = n & ~3;
  for (let p = 0; p < n4; p += 4) {
    const dp = dy + <usize>p * rowBytes;
    for (let kb = 0; kb < k4; kb += 4) {
      tile4(g + (<usize>kb << 2), dp, wt + (<usize>kb << 2), k4);
    }
    for (let q = 0; q < 4; q++) {
      scatter(dx, g + (<usize>(q * k4) << 2), taps, p + q);
    }
  }
  for (let p = n4; p < n; p++) {
    const dp = dy + <usize>p * rowBytes;
    for (let kb = 0; kb < k4; kb += 4) {
      tile1(g + (<usize>kb << 2), dp, wt + (<usize>kb << 2), k4);
    }
    scatter(dx, g, taps, p);
  }
}
