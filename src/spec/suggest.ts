import { distance } from 'fastest-levenshtein';

/** The closest candidate to `input`, if it is close enough to be a plausible typo. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const lower = input.toLowerCase();
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestScore) {
      bestScore = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  const longest = Math.max(input.length, best.length);
  // Transposed letters cost 2 edits, so allow 2 for any word of three letters or more.
  const limit = longest <= 2 ? 1 : Math.max(2, Math.floor(longest / 3));
  return bestScore <= limit || best.toLowerCase().startsWith(lower) || lower.startsWith(best.toLowerCase()) ? best : undefined;
}
