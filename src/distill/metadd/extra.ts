import * as tf from '@tensorflow/tfjs-core';
import { rowChunks } from '../chunks.js';
import type { ExtraLoss } from '../method.js';
import { auxOutputs, type AuxNet } from './aux.js';
import { METADD_CHUNK } from './chunk.js';
import { architectureInvariantLoss, camVarianceLoss, metaFeatureLoss } from './losses.js';

export interface MetaddWeights {
  lambdaAi: number;
  lambdaVar: number;
  /** Our extension L_pos (losses.ts `metaFeatureLoss`); absent: 0, the paper's loss. */
  lambdaPos?: number;
}

/**
 * The MetaDD plug-in: lambda_ai L_ai + lambda_var L_var (+ lambda_pos L_pos) of the current synthetic images through the
 * frozen auxiliary networks, for the driver to add to any method's L_base. The terms are always
 * computed and logged; with both weights 0 (the control arm) they are only measured, without a
 * tape, so the gradient and the update are exactly the base method's.
 */
export function metaddExtraLoss(nets: AuxNet[], weights: MetaddWeights, chunk = METADD_CHUNK): ExtraLoss {
  if (nets.length === 0) throw new Error('MetaDD needs at least one auxiliary network');
  const lambdaPos = weights.lambdaPos ?? 0;
  const active = weights.lambdaAi !== 0 || weights.lambdaVar !== 0 || lambdaPos !== 0;
  const compute: ExtraLoss['compute'] = (syn, labels) => {
    const y = tf.tensor1d(labels, 'int32');
    const outs = nets.map((net) => auxOutputs(net, syn, y));
    const ai = architectureInvariantLoss(
      outs.map((o) => o.logits),
      y,
    );
    const cams = outs.map((o) => o.cams);
    const lVar = camVarianceLoss(cams);
    const lPos = metaFeatureLoss(cams);
    let total: tf.Scalar = active ? (tf.add(tf.mul(ai.total, weights.lambdaAi), tf.mul(lVar, weights.lambdaVar)) as tf.Scalar) : tf.scalar(0);
    // Only a nonzero weight puts L_pos on the tape: the paper's loss keeps its exact bytes.
    if (lambdaPos !== 0) total = tf.add(total, tf.mul(lPos, lambdaPos)) as tf.Scalar;
    return { total, terms: { ai: ai.total, ai_ce: ai.ce, ai_kl: ai.kl, var: lVar, pos: lPos } };
  };
  return { active, chunk, compute };
}

/** The MetaDD terms whose weight relative weights set. */
export type RelativeTerm = 'ai' | 'var' | 'pos';

const RELATIVE_TERMS: Record<RelativeTerm, (cams: tf.Tensor3D[], logits: tf.Tensor2D[], y: tf.Tensor1D) => tf.Scalar> = {
  ai: (_cams, logits, y) => architectureInvariantLoss(logits, y).total,
  var: (cams) => camVarianceLoss(cams),
  pos: (cams) => metaFeatureLoss(cams),
};

/**
 * ||d L_t / d x|| over the set `syn` (NHWC) for each requested term t (each term a mean over the images,
 * so a chunk's gradient is weighted by its share of them, chunked like the plug-in). What relative weights
 * divide by. One forward and backward through the auxiliaries per term and chunk: tfjs records a tape per
 * gradient, so terms cannot share a forward pass.
 */
export function termGradientNorms(
  nets: AuxNet[],
  syn: tf.Tensor4D,
  labels: Int32Array,
  terms: readonly RelativeTerm[],
  chunk = METADD_CHUNK,
): Partial<Record<RelativeTerm, number>> {
  const out: Partial<Record<RelativeTerm, number>> = {};
  for (const name of terms) {
    const term = RELATIVE_TERMS[name];
    let sumSquares = 0;
    for (const { start, end, share } of rowChunks(labels.length, chunk)) {
      sumSquares += tf.tidy(() => {
        const y = tf.tensor1d(labels.subarray(start, end), 'int32');
        const x = tf.slice(syn, [start, 0, 0, 0], [end - start, -1, -1, -1]);
        const grad = tf.grad((xc: tf.Tensor) => {
          const outs = nets.map((net) => auxOutputs(net, xc as tf.Tensor4D, y));
          return term(
            outs.map((o) => o.cams),
            outs.map((o) => o.logits),
            y,
          );
        })(x);
        return tf.sum(tf.square(tf.mul(grad, share))).dataSync()[0];
      });
    }
    out[name] = Math.sqrt(sumSquares);
  }
  return out;
}
