import * as tf from '@tensorflow/tfjs-core';
import { ParamRegistry, activate, channelLayerNorm, conv2d, linear } from '../layers.js';
import type { ActKind, ArchSpec, InputShape, Model, Params, ResolvedArch } from '../types.js';
import { is28, makeModel } from './common.js';

/** Swin-S: blocks per stage; attention heads are width x 2^stage / HEAD_DIM. */
const DEPTHS = [2, 2, 18, 2];
const HEAD_DIM = 32;
/** Small-image adaptation (the paper's Swin-S is for 224x224): 2x2 patches, 4x4 windows. */
const PATCH = 2;
const WINDOW = 4;
const MLP_RATIO = 4;
/** timm initialises linear layers and the relative-position tables with std 0.02: a uniform draw with that std. */
const INIT_BOUND = 0.02 * Math.sqrt(3);
/** Added to the attention logits of token pairs from different regions of a shifted window (as timm). */
const MASKED = -100;

/** One block's attention geometry: window side, cyclic shift (0: none), heads. */
export interface SwinBlockShape {
  window: number;
  shift: number;
  heads: number;
}

/**
 * Swin-S (Liu et al. 2021: stages of 2, 2, 18, 2 blocks, embedding width 96, heads 3, 6, 12, 24, MLP ratio 4,
 * windowed multi-head self-attention with a relative-position bias, every second block on windows shifted by
 * half a window, patch merging between stages), adapted to 32x32 images: 2x2 patches and 4x4 windows (the
 * 224x224 model uses 4x4 patches and 7x7 windows), a window clamped to the map and unshifted where the map is no
 * larger than it (timm's rule). 28x28 inputs are zero-padded to 32x32, as the ConvNet's first padding makes
 * them. The trunk ends with the final layer norm; the classifier averages the tokens, so heads 'flatten' and
 * 'gap' are the same network and the CAM is exact.
 */
export function buildSwin(arch: ResolvedArch, input: InputShape, canonical: ArchSpec): Model {
  const { width, act } = arch;
  if (width % HEAD_DIM !== 0) throw new Error(`swin: width must be a multiple of ${HEAD_DIM} (the head dimension), got ${width}`);
  const pad = is28(input) ? 2 : 0;
  const side = (n: number): number => n + 2 * pad;
  let h = side(input.height) / PATCH;
  let w = side(input.width) / PATCH;
  const reg = new ParamRegistry();
  reg.conv('patch_embed.proj', PATCH, input.channels, width);
  reg.channelNorm('patch_embed.norm', width);
  const stages: { blocks: SwinBlockShape[]; merge: boolean }[] = [];
  let c = width;
  DEPTHS.forEach((depth, s) => {
    if (!Number.isInteger(h) || !Number.isInteger(w)) throw new Error(`swin: input ${input.height}x${input.width} does not split into ${PATCH}x${PATCH} patches and halve 3 times (use 32x32, 64x64, or 28x28)`);
    const win = Math.min(WINDOW, h, w);
    if (h % win !== 0 || w % win !== 0) throw new Error(`swin: stage ${s + 1}'s ${h}x${w} map does not split into ${win}x${win} windows (use 32x32, 64x64, or 28x28 inputs)`);
    const shiftable = Math.min(h, w) > WINDOW;
    const blocks: SwinBlockShape[] = [];
    for (let b = 0; b < depth; b++) {
      const shape: SwinBlockShape = { window: win, shift: shiftable && b % 2 === 1 ? win / 2 : 0, heads: c / HEAD_DIM };
      registerBlock(reg, `layers.${s}.blocks.${b}`, c, shape);
      blocks.push(shape);
    }
    const merge = s < DEPTHS.length - 1;
    if (merge) {
      reg.channelNorm(`layers.${s}.downsample.norm`, 4 * c);
      reg.linear(`layers.${s}.downsample.reduction`, 4 * c, 2 * c, false, INIT_BOUND);
      c *= 2;
      h /= 2;
      w /= 2;
    }
    stages.push({ blocks, merge });
  });
  reg.channelNorm('norm', c);
  reg.linear('classifier', c, input.classes);

  return makeModel({
    arch,
    canonical,
    input,
    reg,
    classifier: 'classifier',
    trunk: (params, x) => {
      const padded = pad > 0 ? tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]]) : x;
      let y = channelLayerNorm(params, 'patch_embed.norm', conv2d(params, 'patch_embed.proj', padded, PATCH, 0));
      stages.forEach(({ blocks, merge }, s) => {
        blocks.forEach((shape, b) => {
          y = swinBlock(params, `layers.${s}.blocks.${b}`, y, shape, act);
        });
        if (merge) y = patchMerge(params, `layers.${s}.downsample`, y);
      });
      return channelLayerNorm(params, 'norm', y);
    },
    flatHead: (_params, a) => tf.mean(a, [1, 2]),
  });
}

function registerBlock(reg: ParamRegistry, name: string, c: number, { window, heads }: SwinBlockShape): void {
  reg.channelNorm(`${name}.norm1`, c);
  reg.linear(`${name}.attn.qkv`, c, 3 * c, true, INIT_BOUND);
  reg.uniform(`${name}.attn.relative_position_bias_table`, [(2 * window - 1) ** 2, heads], INIT_BOUND);
  reg.linear(`${name}.attn.proj`, c, c, true, INIT_BOUND);
  reg.channelNorm(`${name}.norm2`, c);
  reg.linear(`${name}.mlp.fc1`, c, MLP_RATIO * c, true, INIT_BOUND);
  reg.linear(`${name}.mlp.fc2`, MLP_RATIO * c, c, true, INIT_BOUND);
}

/** A linear layer applied to every token of an NHWC map. */
function tokenLinear(params: Params, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const y = linear(params, name, tf.reshape(x, [n * h * w, c]));
  return tf.reshape(y, [n, h, w, y.shape[1]]);
}

/** torch.roll(x, shifts=(by, by), dims=(1, 2)): element i moves to i + by (mod size). */
function roll(x: tf.Tensor4D, by: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  const rows = ((by % h) + h) % h;
  const cols = ((by % w) + w) % w;
  let y = rows === 0 ? x : tf.concat([tf.slice(x, [0, h - rows, 0, 0], [-1, rows, -1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, h - rows, -1, -1])], 1);
  y = cols === 0 ? y : tf.concat([tf.slice(y, [0, 0, w - cols, 0], [-1, -1, cols, -1]), tf.slice(y, [0, 0, 0, 0], [-1, -1, w - cols, -1])], 2);
  return y;
}

/** [N, H, W, C] -> [N * windows, window^2, C], windows in row-major order, tokens row-major within each. */
function toWindows(x: tf.Tensor4D, win: number): tf.Tensor3D {
  const [n, h, w, c] = x.shape;
  const y = tf.transpose(tf.reshape(x, [n, h / win, win, w / win, win, c]), [0, 1, 3, 2, 4, 5]);
  return tf.reshape(y, [n * (h / win) * (w / win), win * win, c]);
}

function fromWindows(x: tf.Tensor3D, win: number, n: number, h: number, w: number): tf.Tensor4D {
  const c = x.shape[2];
  const y = tf.transpose(tf.reshape(x, [n, h / win, w / win, win, win, c]), [0, 1, 3, 2, 4, 5]);
  return tf.reshape(y, [n, h, w, c]);
}

/** For every pair of tokens (i, j) of a window, the row of the relative-position table: (dy + win - 1)(2 win - 1) + dx + win - 1. */
export function relativePositionIndex(win: number): Int32Array {
  const t = win * win;
  const out = new Int32Array(t * t);
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < t; j++) {
      const dy = Math.floor(i / win) - Math.floor(j / win);
      const dx = (i % win) - (j % win);
      out[i * t + j] = (dy + win - 1) * (2 * win - 1) + dx + win - 1;
    }
  }
  return out;
}

/**
 * The additive mask of a shifted block, [windows, win^2, win^2]: after the cyclic shift, a window at the map's
 * bottom or right edge holds tokens from regions that are not adjacent in the image; pairs from different
 * regions get MASKED. Regions: the three bands [0, H - win), [H - win, H - shift), [H - shift, H) per axis.
 */
export function shiftedWindowMask(h: number, w: number, win: number, shift: number): Float32Array {
  const band = (i: number, size: number): number => (i < size - win ? 0 : i < size - shift ? 1 : 2);
  const region = (y: number, x: number): number => 3 * band(y, h) + band(x, w);
  const t = win * win;
  const windows = (h / win) * (w / win);
  const out = new Float32Array(windows * t * t);
  for (let wy = 0; wy < h / win; wy++) {
    for (let wx = 0; wx < w / win; wx++) {
      const k = wy * (w / win) + wx;
      const ids = Array.from({ length: t }, (_, i) => region(wy * win + Math.floor(i / win), wx * win + (i % win)));
      for (let i = 0; i < t; i++) for (let j = 0; j < t; j++) out[(k * t + i) * t + j] = ids[i] === ids[j] ? 0 : MASKED;
    }
  }
  return out;
}

/** Windowed multi-head self-attention of a [N, H, W, C] map (after norm1): the block's residual branch. */
function windowAttention(params: Params, name: string, x: tf.Tensor4D, { window: win, shift, heads }: SwinBlockShape): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const d = c / heads;
  const t = win * win;
  const shifted = shift > 0 ? roll(x, -shift) : x;
  const tokens = toWindows(shifted, win);
  const b = tokens.shape[0];
  const qkv = linear(params, `${name}.qkv`, tf.reshape(tokens, [b * t, c]));
  const parts = tf.transpose(tf.reshape(qkv, [b, t, 3, heads, d]), [2, 0, 3, 1, 4]);
  const [q, k, v] = tf.unstack(parts, 0) as tf.Tensor4D[];
  let logits = tf.matMul(tf.mul(q, 1 / Math.sqrt(d)), k, false, true);
  const table = params[`${name}.relative_position_bias_table`];
  const bias = tf.transpose(tf.reshape(tf.gather(table, tf.tensor1d(relativePositionIndex(win), 'int32')), [t, t, heads]), [2, 0, 1]);
  logits = tf.add(logits, bias);
  if (shift > 0) {
    const windows = b / n;
    const mask = tf.tensor(shiftedWindowMask(h, w, win, shift), [1, windows, 1, t, t]);
    logits = tf.reshape(tf.add(tf.reshape(logits, [n, windows, heads, t, t]), mask), [b, heads, t, t]);
  }
  const out = tf.matMul(tf.softmax(logits), v);
  const merged = tf.reshape<tf.Rank.R2>(tf.transpose(out, [0, 2, 1, 3]), [b * t, c]);
  const projected = tf.reshape(linear(params, `${name}.proj`, merged), [b, t, c]) as tf.Tensor3D;
  const back = fromWindows(projected, win, n, h, w);
  return shift > 0 ? roll(back, shift) : back;
}

/** One Swin block: x + attention(norm1(x)), then + MLP(norm2(.)). */
export function swinBlock(params: Params, name: string, x: tf.Tensor4D, shape: SwinBlockShape, act: ActKind): tf.Tensor4D {
  const y = tf.add<tf.Tensor4D>(x, windowAttention(params, `${name}.attn`, channelLayerNorm(params, `${name}.norm1`, x), shape));
  const hidden = activate(act, tokenLinear(params, `${name}.mlp.fc1`, channelLayerNorm(params, `${name}.norm2`, y)));
  return tf.add(y, tokenLinear(params, `${name}.mlp.fc2`, hidden));
}

/** Patch merging: each 2x2 group of tokens concatenated (timm's order: (0,0), (1,0), (0,1), (1,1)), normed, and reduced to 2C. */
function patchMerge(params: Params, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const grouped = tf.transpose(tf.reshape(x, [n, h / 2, 2, w / 2, 2, c]), [0, 1, 3, 4, 2, 5]);
  const merged = tf.reshape<tf.Rank.R4>(grouped, [n, h / 2, w / 2, 4 * c]);
  return tokenLinear(params, `${name}.reduction`, channelLayerNorm(params, `${name}.norm`, merged));
}
