import type { Cell } from '../spec/resolve.js';
import { getPath, type Json } from '../spec/paths.js';

/** What `disambiguateLabels` reads and rewrites of a stage. */
interface LabelledNode {
  key: string;
  label: string;
  /** Indices of the cells that need the stage (-1: none, the report). */
  cells: number[];
}

/**
 * Distinct stages that share a label (cells that differ in a setting the label does not name:
 * `eval.epochs`, `metadd.relative_weights`, `distill.sre2l.init`, ...) get the swept values that tell
 * them apart appended (read from the cell specs, so a cell that leaves a swept setting at its default
 * shows the default), so that progress lines, MLflow runs and `plan` name each stage once. A value is
 * one a stage's cells all agree on: a stage shared by cells that differ in a setting does not read it.
 * Stages no swept value separates get their key's first characters. Labels are not part of keys.
 */
export function disambiguateLabels(nodes: Iterable<LabelledNode>, cells: readonly Cell[]): void {
  const specOf = new Map(cells.map((c) => [c.index, c.spec as unknown as Json]));
  const swept = [...new Set(cells.flatMap((c) => Object.keys(c.coords)))];
  const groups = new Map<string, LabelledNode[]>();
  for (const node of nodes) {
    const group = groups.get(node.label);
    if (group) group.push(node);
    else groups.set(node.label, [node]);
  }
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const shared = group.map((n) => sharedValues(swept, n.cells.flatMap((i) => specOf.get(i) ?? [])));
    const paths = [...new Set(shared.flatMap((s) => [...s.keys()]))].filter((p) => new Set(shared.map((s) => s.get(p))).size > 1);
    group.forEach((node, i) => {
      const parts = paths.filter((p) => shared[i].has(p)).map((p) => `${p}=${shared[i].get(p) ?? ''}`);
      if (parts.length > 0) node.label = `${node.label} ${parts.join(' ')}`;
    });
    const counts = new Map<string, number>();
    for (const n of group) counts.set(n.label, (counts.get(n.label) ?? 0) + 1);
    for (const n of group) if ((counts.get(n.label) ?? 0) > 1) n.label = `${n.label} #${n.key.slice(0, 8)}`;
  }
}

/** The values at `paths` (path -> formatted value) that the cell specs `specs` all have alike. */
function sharedValues(paths: readonly string[], specs: readonly Json[]): Map<string, string> {
  const shared = new Map<string, string>();
  if (specs.length === 0) return shared;
  for (const path of paths) {
    const text = formatValue(getPath(specs[0], path) ?? null);
    if (specs.every((s) => formatValue(getPath(s, path) ?? null) === text)) shared.set(path, text);
  }
  return shared;
}

/** A swept value as a label shows it: flow style without quotes, keys sorted (`{ai:0.2,var:0}`, `[convnet,mlp]`). */
function formatValue(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(formatValue).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}:${formatValue(v)}`).join(',')}}`;
  return String(value);
}
