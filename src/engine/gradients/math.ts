/**
 * Gradients of elementwise, reduction and shape kernels.
 *
 * tfjs-core's CommonJS build (the one Node loads) registers no gradients at
 * all: only its ES-module entry imports register_all_gradients, so with
 * tfjs-core alone `tf.grad` fails on the first op. These are tfjs-core 4.22's
 * definitions (Apache-2.0) ported to the public API, with one systematic
 * change: none reads a saved OUTPUT. The engine saves an output by cloning it
 * before the kernel's own tape node is recorded, so the clone is not connected
 * to the input on the tape and is treated as a constant when the gradient is
 * itself differentiated (REFERENCE section 5: d/db of sum(tanh(tanh(x) b))
 * came out -0.66 against -6.15). Every gradient here recomputes what it needs
 * from saved inputs instead, which costs one extra elementwise op.
 */
import * as tf from '@tensorflow/tfjs-core';
import { broadcastShape, f32, one, unbroadcast, zeroGrads, type NamedGradientMap } from './util.js';

type Grad = tf.GradConfig;

const unary = (kernelName: string, d: (x: tf.Tensor, dy: tf.Tensor) => tf.Tensor): Grad => ({
  kernelName,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => ({ x: () => d(saved[0], one(dy)) }),
});

const zeroUnary = (kernelName: string): Grad => ({
  kernelName,
  gradFunc: (dy) => ({ x: () => tf.zerosLike(one(dy)) }),
});

const binary = (
  kernelName: string,
  da: (a: tf.Tensor, b: tf.Tensor, dy: tf.Tensor) => tf.Tensor,
  db: (a: tf.Tensor, b: tf.Tensor, dy: tf.Tensor) => tf.Tensor,
): Grad => ({
  kernelName,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved) => {
    const [a, b] = saved;
    const out = broadcastShape(a, b);
    const g = one(dy);
    return {
      a: () => unbroadcast(da(a, b, g), a.shape, out),
      b: () => unbroadcast(db(a, b, g), b.shape, out),
    };
  },
});

const sq = (x: tf.Tensor): tf.Tensor => tf.square(f32(x));

export const elementwiseGradients: Grad[] = [
  unary('Abs', (x, dy) => tf.mul(dy, tf.step(f32(x), -1))),
  unary('Acos', (x, dy) => tf.neg(tf.div(dy, tf.sqrt(tf.sub(1, sq(x)))))),
  unary('Acosh', (x, dy) => tf.div(dy, tf.sqrt(tf.sub(sq(x), 1)))),
  unary('Asin', (x, dy) => tf.div(dy, tf.sqrt(tf.sub(1, sq(x))))),
  unary('Asinh', (x, dy) => tf.div(dy, tf.sqrt(tf.add(1, sq(x))))),
  unary('Atan', (x, dy) => tf.div(dy, tf.add(sq(x), 1))),
  unary('Atanh', (x, dy) => tf.div(dy, tf.sub(1, sq(x)))),
  unary('Cos', (x, dy) => tf.mul(tf.neg(tf.sin(f32(x))), dy)),
  unary('Cosh', (x, dy) => tf.mul(tf.sinh(f32(x)), dy)),
  unary('Sin', (x, dy) => tf.mul(tf.cos(f32(x)), dy)),
  unary('Sinh', (x, dy) => tf.mul(tf.cosh(f32(x)), dy)),
  unary('Tan', (x, dy) => tf.div(dy, tf.square(tf.cos(x)))),
  unary('Erf', (x, dy) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)))),
  // Recomputed from x: tfjs-core reads the saved output (wrong second order).
  unary('Exp', (x, dy) => tf.mul(dy, tf.exp(x))),
  unary('Expm1', (x, dy) => tf.mul(dy, tf.exp(x))),
  unary('Log', (x, dy) => tf.div(dy, f32(x))),
  unary('Log1p', (x, dy) => tf.div(dy, tf.add(x, 1))),
  unary('Reciprocal', (x, dy) => tf.div(dy, tf.neg(tf.square(x)))),
  unary('Rsqrt', (x, dy) => tf.neg(tf.div(dy, tf.mul(tf.pow(x, 1.5), 2)))),
  unary('Sqrt', (x, dy) => tf.div(dy, tf.mul(tf.sqrt(f32(x)), 2))),
  unary('Square', (x, dy) => tf.mul(dy, tf.mul(f32(x), 2))),
  // Recomputed from x: tfjs-core reads the saved output (wrong second order).
  unary('Sigmoid', (x, dy) => {
    const y = tf.sigmoid(x);
    return tf.mul(dy, tf.mul(y, tf.sub(1, y)));
  }),
  unary('Tanh', (x, dy) => tf.mul(tf.sub(1, tf.square(tf.tanh(x))), dy)),
  unary('Softplus', (x, dy) => tf.mul(dy, tf.sigmoid(x))),
  // elu'(x) = 1 for x > 0, exp(x) otherwise; exp(min(x, 0)) keeps the unused
  // branch finite so its zero weight cannot turn into 0 * inf = NaN.
  unary('Elu', (x, dy) => {
    const pos = tf.step(x);
    return tf.mul(dy, tf.add(pos, tf.mul(tf.sub(1, pos), tf.exp(tf.minimum(x, 0)))));
  }),
  unary('Selu', (x, dy) => {
    const scale = 1.0507009873554805; // SELU_SCALE
    const scaleAlpha = 1.7580993408473768; // SELU_SCALE * SELU_ALPHA
    const pos = tf.step(x);
    const neg = tf.mul(tf.sub(1, pos), tf.mul(tf.exp(tf.minimum(f32(x), 0)), scaleAlpha));
    return tf.mul(dy, tf.add(tf.mul(pos, scale), neg));
  }),
  unary('Relu', (x, dy) => tf.mul(dy, f32(tf.step(x)))),
  unary('Relu6', (x, dy) => tf.mul(dy, tf.mul(f32(tf.lessEqual(x, 6)), tf.step(x)))),
  // alpha + (1 - alpha) * step(x) is 1 for x > 0 and alpha otherwise, as
  // tfjs-core's where(x > 0, dy, alpha * dy), without a comparison (slow on wasm).
  {
    kernelName: 'LeakyRelu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const { alpha } = attrs as unknown as tf.LeakyReluAttrs;
      const slope = tf.add(alpha, tf.mul(1 - alpha, tf.step(saved[0])));
      return { x: () => tf.mul(one(dy), slope) };
    },
  },
  {
    kernelName: 'Prelu',
    inputsToSave: ['x', 'alpha'],
    gradFunc: (dy, saved) => {
      const [x, alpha] = saved;
      const g = one(dy);
      const pos = tf.step(x);
      return {
        x: () => tf.mul(g, tf.add(pos, tf.mul(tf.sub(1, pos), alpha))),
        alpha: () => unbroadcast(tf.mul(tf.mul(g, x), tf.sub(1, pos)), alpha.shape, g.shape),
      };
    },
  },
  {
    kernelName: 'ClipByValue',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const { clipValueMin, clipValueMax } = attrs as unknown as tf.ClipByValueAttrs;
      const x = saved[0];
      const g = one(dy);
      const inside = tf.logicalAnd(tf.greaterEqual(x, clipValueMin), tf.lessEqual(x, clipValueMax));
      return { x: () => tf.where(inside, g, tf.zerosLike(g)) };
    },
  },
  unary('Neg', (_x, dy) => tf.neg(dy)),
  ...['Ceil', 'Floor', 'Round', 'Sign', 'Step', 'IsFinite', 'IsInf', 'IsNan', 'OnesLike', 'ZerosLike'].map(zeroUnary),
  {
    kernelName: 'Cast',
    gradFunc: (dy) => ({ x: () => tf.clone(one(dy)) }),
  },
  {
    kernelName: 'Identity',
    gradFunc: (dy) => ({ x: () => tf.cast(one(dy), 'float32') }),
  },
  binary('Add', (_a, _b, dy) => dy, (_a, _b, dy) => dy),
  binary('Sub', (_a, _b, dy) => dy, (_a, _b, dy) => tf.neg(dy)),
  binary('Multiply', (_a, b, dy) => tf.mul(dy, f32(b)), (a, _b, dy) => tf.mul(dy, f32(a))),
  binary(
    'RealDiv',
    (_a, b, dy) => tf.div(dy, f32(b)),
    (a, b, dy) => tf.neg(tf.div(tf.mul(dy, f32(a)), f32(tf.square(b)))),
  ),
  binary(
    'FloorDiv',
    (_a, b, dy) => tf.div(dy, f32(b)),
    (a, b, dy) => tf.neg(tf.div(tf.mul(dy, f32(a)), f32(tf.square(b)))),
  ),
  binary('Mod', (_a, _b, dy) => dy, (a, b, dy) => tf.mul(dy, tf.neg(tf.floor(tf.div(a, b))))),
  binary(
    'SquaredDifference',
    (a, b, dy) => tf.mul(dy, tf.mul(2, tf.sub(a, b))),
    (a, b, dy) => tf.mul(dy, tf.mul(2, tf.sub(b, a))),
  ),
  binary('Maximum', (a, b, dy) => tf.mul(dy, f32(tf.greaterEqual(a, b))), (a, b, dy) => tf.mul(dy, f32(tf.less(a, b)))),
  binary('Minimum', (a, b, dy) => tf.mul(dy, f32(tf.lessEqual(a, b))), (a, b, dy) => tf.mul(dy, f32(tf.greater(a, b)))),
  binary(
    'Atan2',
    (a, b, dy) => tf.mul(dy, tf.div(b, tf.add(tf.square(a), tf.square(b)))),
    (a, b, dy) => tf.neg(tf.mul(dy, tf.div(a, tf.add(tf.square(a), tf.square(b))))),
  ),
  // Recomputes a^b for d/db instead of reading the saved output.
  binary(
    'Pow',
    (a, b, dy) => {
      const bf = f32(b);
      return tf.mul(dy, tf.mul(bf, tf.pow(a, tf.sub(bf, 1))));
    },
    (a, b, dy) => {
      const logA = tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a));
      return tf.mul(dy, tf.mul(tf.pow(a, b), logA));
    },
  ),
  // Comparisons and logical ops are piecewise constant: zero gradients. tfjs
  // registers one only for GreaterEqual, so e.g. the gradient of max() (which
  // builds a mask with equal()) cannot itself be differentiated without these.
  ...['Equal', 'NotEqual', 'Less', 'LessEqual', 'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr', 'LogicalXor'].map(
    (kernelName): Grad => ({ kernelName, inputsToSave: ['a', 'b'], gradFunc: zeroGrads(['a', 'b']) }),
  ),
  { kernelName: 'LogicalNot', inputsToSave: ['x'], gradFunc: zeroGrads(['x']) },
  {
    kernelName: 'Select',
    inputsToSave: ['condition'],
    gradFunc: (dy, saved) => {
      const [condition] = saved;
      const g = one(dy);
      return {
        condition: () => tf.cast(tf.zerosLike(condition), 'float32'),
        t: () => tf.mul(g, tf.cast(condition, g.dtype)),
        e: () => tf.mul(g, tf.cast(tf.logicalNot(condition), g.dtype)),
      };
    },
  },
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: (dy, saved) => {
      const out: NamedGradientMap = {};
      saved.forEach((_t, i) => {
        out[i] = () => tf.clone(one(dy));
      });
      return out;
    },
  },
];
