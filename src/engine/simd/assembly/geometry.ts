// AssemblyScript (see ../module.ts). The convolution geometry of the current kernel call, held in wasm
// globals (the module owns no memory: every byte it touches belongs to the tfjs heap), and the pixel each
// filter tap reads at an output position: the index arithmetic both convolution kernels share.

export let inH: i32 = 0;
export let inW: i32 = 0;
export let inC: i32 = 0;
export let outH: i32 = 0;
export let outW: i32 = 0;
export let outC: i32 = 0;
export let kh: i32 = 0;
export let kw: i32 = 0;
export let sh: i32 = 0;
export let sw: i32 = 0;
export let top: i32 = 0;
export let left: i32 = 0;

export function setGeometry(
  inH_: i32, inW_: i32, inC_: i32, outH_: i32, outW_: i32, outC_: i32,
  kh_: i32, kw_: i32, sh_: i32, sw_: i32, top_: i32, left_: i32,
): void {
  inH = inH_; inW = inW_; inC = inC_; outH = outH_; outW = outW_; outC = outC_;
  kh = kh_; kw = kw_; sh = sh_; sw = sw_; top = top_; left = left_;
}

/** Bytes of the table `positionTaps` writes (one i32 per tap, rounded up to 16). */
export function tapTableBytes(): i32 {
  return ((kh * kw) * 4 + 15) & ~15;
}

/**
 * For output position p (= (b*OH + oh)*OW + ow), writes at `table` the element offset of x[b, ih, iw, 0]
 * that each tap t = i*KW + j reads (ih = oh*sh + i - top, iw = ow*sw + j - left), or -1 where the tap
 * falls in the padding.
 */
export function positionTaps(table: usize, p: i32): void {
  const ow = p % outW;
  const rest = p / outW;
  const oh = rest % outH;
  const b = rest / outH;
  for (let i = 0; i < kh; i++) {
    const ih = oh * sh + i - top;
    const rowValid = ih >= 0 && ih < inH;
    for (let j = 0; j < kw; j++) {
      const iw = ow * sw + j - left;
      const at = table + (<usize>(i * kw + j) << 2);
      store<i32>(at, rowValid && iw >= 0 && iw < inW ? ((b * inH + ih) * inW + iw) * inC : -1);
    }
  }
}
