/**
 * Float64 reference for the engine tests: a small reverse-mode autodiff over
 * Float64Arrays with the ops our second-order checks need (NHWC conv2d,
 * broadcasting arithmetic, tanh/relu/rsqrt, means, 2x2 pooling, matmul,
 * log-softmax). Finite differences of functions built from these are exact to
 * ~1e-9, so they can judge float32 tfjs gradients, including gradients of
 * gradients (the inner gradient is computed here in float64 too).
 */

export class T {
  grad: Float64Array | undefined;
  constructor(
    readonly data: Float64Array,
    readonly shape: number[],
    readonly back: ((g: Float64Array) => void) | undefined = undefined,
    readonly parents: T[] = [],
  ) {}
  get size(): number {
    return this.data.length;
  }
}

export const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);

export function leaf(data: ArrayLike<number>, shape: number[]): T {
  if (data.length !== size(shape)) throw new Error(`leaf: ${data.length} values for shape [${shape}]`);
  return new T(Float64Array.from(data), shape);
}

function accumulate(t: T, g: Float64Array): void {
  if (t.grad === undefined) t.grad = new Float64Array(t.size);
  for (let i = 0; i < g.length; i++) t.grad[i] += g[i];
}

function node(data: Float64Array, shape: number[], parents: T[], back: (g: Float64Array) => Float64Array[]): T {
  const out: T = new T(data, shape, (g) => {
    const gs = back(g);
    parents.forEach((p, i) => accumulate(p, gs[i]));
  }, parents);
  return out;
}

/** Gradients of scalar `y` with respect to `xs` (reverse topological sweep). */
export function gradients(y: T, xs: T[]): Float64Array[] {
  const order: T[] = [];
  const seen = new Set<T>();
  const visit = (t: T): void => {
    if (seen.has(t)) return;
    seen.add(t);
    t.parents.forEach(visit);
    order.push(t);
  };
  visit(y);
  for (const t of order) t.grad = undefined;
  y.grad = new Float64Array(y.size).fill(1);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    if (t.back !== undefined && t.grad !== undefined) t.back(t.grad);
  }
  return xs.map((x) => x.grad ?? new Float64Array(x.size));
}

function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Index map from the broadcast output to each operand (same rank after left-padding). */
function broadcast(a: number[], b: number[]): { out: number[]; ia: Int32Array; ib: Int32Array } {
  const r = Math.max(a.length, b.length);
  const pa = [...new Array<number>(r - a.length).fill(1), ...a];
  const pb = [...new Array<number>(r - b.length).fill(1), ...b];
  const out = pa.map((d, i) => {
    if (d !== pb[i] && d !== 1 && pb[i] !== 1) throw new Error(`broadcast [${a}] vs [${b}]`);
    return Math.max(d, pb[i]);
  });
  const n = size(out);
  const so = strides(out);
  const sa = strides(pa);
  const sb = strides(pb);
  const ia = new Int32Array(n);
  const ib = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let ka = 0;
    let kb = 0;
    for (let d = 0; d < r; d++) {
      const c = Math.floor(rem / so[d]);
      rem -= c * so[d];
      if (pa[d] !== 1) ka += c * sa[d];
      if (pb[d] !== 1) kb += c * sb[d];
    }
    ia[i] = ka;
    ib[i] = kb;
  }
  return { out, ia, ib };
}

function binary(
  a: T,
  b: T,
  f: (x: number, y: number) => number,
  dfa: (x: number, y: number) => number,
  dfb: (x: number, y: number) => number,
): T {
  const { out, ia, ib } = broadcast(a.shape, b.shape);
  const data = new Float64Array(ia.length);
  for (let i = 0; i < data.length; i++) data[i] = f(a.data[ia[i]], b.data[ib[i]]);
  return node(data, out, [a, b], (g) => {
    const ga = new Float64Array(a.size);
    const gb = new Float64Array(b.size);
    for (let i = 0; i < g.length; i++) {
      const x = a.data[ia[i]];
      const y = b.data[ib[i]];
      ga[ia[i]] += g[i] * dfa(x, y);
      gb[ib[i]] += g[i] * dfb(x, y);
    }
    return [ga, gb];
  });
}

export const add = (a: T, b: T): T => binary(a, b, (x, y) => x + y, () => 1, () => 1);
export const sub = (a: T, b: T): T => binary(a, b, (x, y) => x - y, () => 1, () => -1);
export const mul = (a: T, b: T): T => binary(a, b, (x, y) => x * y, (_x, y) => y, (x) => x);

function unary(a: T, f: (x: number) => number, df: (x: number) => number): T {
  const data = a.data.map(f);
  return node(data, a.shape, [a], (g) => [g.map((gi, i) => gi * df(a.data[i]))]);
}

export const tanh = (a: T): T => unary(a, Math.tanh, (x) => 1 - Math.tanh(x) ** 2);
export const relu = (a: T): T => unary(a, (x) => Math.max(0, x), (x) => (x > 0 ? 1 : 0));
export const square = (a: T): T => unary(a, (x) => x * x, (x) => 2 * x);
export const scale = (a: T, s: number): T => unary(a, (x) => x * s, () => s);
export const rsqrtEps = (a: T, eps: number): T =>
  unary(a, (x) => 1 / Math.sqrt(x + eps), (x) => -0.5 * (x + eps) ** -1.5);

export function reshape(a: T, shape: number[]): T {
  if (size(shape) !== a.size) throw new Error('reshape size');
  return node(a.data, shape, [a], (g) => [g]);
}

/** Mean over `axes`, keeping them as size-1 dims. */
export function mean(a: T, axes: number[]): T {
  const outShape = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = a.size / size(outShape);
  const data = new Float64Array(size(outShape));
  // Broadcasting outShape up to a.shape maps each element of a to its mean's index.
  const { ib } = broadcast(a.shape, outShape);
  for (let i = 0; i < a.size; i++) data[ib[i]] += a.data[i] / n;
  return node(data, outShape, [a], (g) => {
    const ga = new Float64Array(a.size);
    for (let i = 0; i < a.size; i++) ga[i] = g[ib[i]] / n;
    return [ga];
  });
}

export function sumAll(a: T): T {
  let s = 0;
  for (const v of a.data) s += v;
  return node(Float64Array.of(s), [], [a], (g) => [new Float64Array(a.size).fill(g[0])]);
}

/** NHWC conv2d, filter [KH, KW, Ci, Co], explicit padding [top, bottom, left, right]. */
export function conv2d(x: T, w: T, stride: number, pad: [number, number, number, number]): T {
  const [B, H, W, C] = x.shape;
  const [KH, KW, Ci, Co] = w.shape;
  if (Ci !== C) throw new Error('conv2d channels');
  const [pt, pb, pl, pr] = pad;
  const OH = Math.floor((H + pt + pb - KH) / stride) + 1;
  const OW = Math.floor((W + pl + pr - KW) / stride) + 1;
  const out = new Float64Array(B * OH * OW * Co);
  const loop = (f: (xi: number, wi: number, oi: number) => void): void => {
    for (let b = 0; b < B; b++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++)
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * stride + kh - pt;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * stride + kw - pl;
              if (iw < 0 || iw >= W) continue;
              for (let ci = 0; ci < C; ci++) {
                const xi = ((b * H + ih) * W + iw) * C + ci;
                for (let co = 0; co < Co; co++) {
                  f(xi, ((kh * KW + kw) * Ci + ci) * Co + co, ((b * OH + oh) * OW + ow) * Co + co);
                }
              }
            }
          }
  };
  loop((xi, wi, oi) => {
    out[oi] += x.data[xi] * w.data[wi];
  });
  return node(out, [B, OH, OW, Co], [x, w], (g) => {
    const gx = new Float64Array(x.size);
    const gw = new Float64Array(w.size);
    loop((xi, wi, oi) => {
      gx[xi] += g[oi] * w.data[wi];
      gw[wi] += g[oi] * x.data[xi];
    });
    return [gx, gw];
  });
}

/** Non-overlapping k x k average pooling (NHWC, 'valid'). */
export function avgPool(x: T, k: number): T {
  const [B, H, W, C] = x.shape;
  const OH = Math.floor(H / k);
  const OW = Math.floor(W / k);
  const out = new Float64Array(B * OH * OW * C);
  const idx = (b: number, h: number, w: number, c: number, hh: number, ww: number): number => ((b * hh + h) * ww + w) * C + c;
  for (let b = 0; b < B; b++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++)
        for (let c = 0; c < C; c++)
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) out[idx(b, oh, ow, c, OH, OW)] += x.data[idx(b, oh * k + i, ow * k + j, c, H, W)] / (k * k);
  return node(out, [B, OH, OW, C], [x], (g) => {
    const gx = new Float64Array(x.size);
    for (let b = 0; b < B; b++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++)
          for (let c = 0; c < C; c++)
            for (let i = 0; i < k; i++)
              for (let j = 0; j < k; j++) gx[idx(b, oh * k + i, ow * k + j, c, H, W)] += g[idx(b, oh, ow, c, OH, OW)] / (k * k);
    return [gx];
  });
}

export function matMul(a: T, b: T): T {
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new Error('matMul inner');
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) for (let j = 0; j < N; j++) out[i * N + j] += a.data[i * K + k] * b.data[k * N + j];
  return node(out, [M, N], [a, b], (g) => {
    const ga = new Float64Array(a.size);
    const gb = new Float64Array(b.size);
    for (let i = 0; i < M; i++)
      for (let k = 0; k < K; k++)
        for (let j = 0; j < N; j++) {
          ga[i * K + k] += g[i * N + j] * b.data[k * N + j];
          gb[k * N + j] += g[i * N + j] * a.data[i * K + k];
        }
    return [ga, gb];
  });
}

/** Mean over rows of -sum(labels * log_softmax(logits)). */
export function softmaxCrossEntropy(labels: T, logits: T): T {
  const [B, C] = logits.shape;
  const p = new Float64Array(B * C);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits.data[b * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits.data[b * C + c] - m);
    const lse = m + Math.log(s);
    for (let c = 0; c < C; c++) {
      p[b * C + c] = Math.exp(logits.data[b * C + c] - lse);
      loss -= (labels.data[b * C + c] * (logits.data[b * C + c] - lse)) / B;
    }
  }
  return node(Float64Array.of(loss), [], [labels, logits], (g) => {
    const gl = new Float64Array(B * C);
    for (let b = 0; b < B; b++) {
      let ys = 0;
      for (let c = 0; c < C; c++) ys += labels.data[b * C + c];
      for (let c = 0; c < C; c++) gl[b * C + c] = (g[0] * (p[b * C + c] * ys - labels.data[b * C + c])) / B;
    }
    return [new Float64Array(B * C), gl];
  });
}

/** Instance norm over H, W per (sample, channel), affine with per-channel gamma/beta. */
export function instanceNorm(x: T, gamma: T, beta: T, eps: number): T {
  const mu = mean(x, [1, 2]);
  const xc = sub(x, mu);
  const v = mean(square(xc), [1, 2]);
  return add(mul(mul(xc, rsqrtEps(v, eps)), gamma), beta);
}

/** Central finite differences of scalar f at x (modified in place, restored). */
export function finiteDifferences(f: () => number, x: Float64Array, h: number, coords?: number[]): Float64Array {
  const out = new Float64Array(x.length);
  for (const i of coords ?? x.keys()) {
    const v = x[i];
    x[i] = v + h;
    const fp = f();
    x[i] = v - h;
    const fm = f();
    x[i] = v;
    out[i] = (fp - fm) / (2 * h);
  }
  return out;
}
