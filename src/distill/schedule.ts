/**
 * The pixel learning rate of a cosine schedule without warm-up at step t of a run of `total` steps
 * (SRe2L's reference): 0.5 lr (1 + cos(pi t / total)). Free of tfjs, so the planner can read it too.
 */
export function cosineLr(lr: number, t: number, total: number): number {
  return 0.5 * lr * (1 + Math.cos((Math.PI * t) / total));
}
