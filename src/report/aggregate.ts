/** Aggregation of evaluation results into table entries: mean, sample std and count. */
export interface Stat {
  mean: number;
  /** Sample standard deviation (n - 1); 0 for a single value. */
  std: number;
  n: number;
}

export function stat(values: readonly number[]): Stat | undefined {
  if (values.length === 0) return undefined;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance), n: values.length };
}

/**
 * Pools the per-model accuracies of several evaluations (seeds x models) into one statistic, as the
 * reference protocol reports "mean ± std over distillation runs x evaluation models".
 */
export function pooledStat(groups: readonly (readonly number[])[]): Stat | undefined {
  return stat(groups.flat());
}

/** A fraction in [0, 1] printed as a percentage with `digits` decimals. */
export function pct(x: number, digits: number): string {
  return (100 * x).toFixed(digits);
}

/** Percent as papers print accuracies: "97.4 ± 0.2"; `missing` for no value (never zero). */
export function formatStat(s: Stat | undefined, digits = 1, missing = '—'): string {
  if (!s) return missing;
  return `${pct(s.mean, digits)} ± ${pct(s.std, digits)}`;
}
