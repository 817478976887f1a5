// Free of TensorFlow.js: the distill stage reads it before it knows whether the method needs tensors.

/**
 * Milliseconds between the time-based checkpoints of the training and distillation stages: `METADD_CHECKPOINT_SECONDS`
 * when set (0 = after every step; useful on preemptible cluster nodes), else `defaultSeconds`.
 */
export function checkpointIntervalMs(defaultSeconds: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.METADD_CHECKPOINT_SECONDS;
  if (raw === undefined || raw === '') return defaultSeconds * 1000;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`METADD_CHECKPOINT_SECONDS must be a number of seconds >= 0, got '${raw}'`);
  return v * 1000;
}
