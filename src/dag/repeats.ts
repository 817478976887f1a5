import type { Dag } from './compile.js';

export interface RepeatedCells {
  /** Cells whose set and evaluations are all stages of an earlier cell. */
  count: number;
  /** The swept paths in which such cells differ from the cell they repeat (settings nothing of theirs reads). */
  paths: string[];
}

/**
 * Cells that compile to exactly the stages of an earlier cell: a sweep axis that only some methods
 * read (`distill.sre2l.init` crossed with `distill.method: random`) repeats the other methods' cells.
 * They cost nothing (the stages are shared), but a user who swept the axis should know it did not
 * vary them.
 */
export function repeatedCells(dag: Dag): RepeatedCells {
  const first = new Map<string, Record<string, unknown>>();
  const paths = new Set<string>();
  let count = 0;
  for (const c of dag.cells) {
    const signature = JSON.stringify([c.setKey, ...c.evals.map((e) => e.key)]);
    const earlier = first.get(signature);
    if (!earlier) {
      first.set(signature, c.cell.coords);
      continue;
    }
    count++;
    for (const [path, value] of Object.entries(c.cell.coords)) {
      if (JSON.stringify(value) !== JSON.stringify(earlier[path])) paths.add(path);
    }
  }
  return { count, paths: [...paths] };
}
