import type { SpecIssue } from './errors.js';
import { canonicalJson, getPath, jsonEqual, setPath, splitPath, type Json, type JsonObject } from './paths.js';
import { schemaAt, keysAt } from './schema.js';
import { suggest } from './suggest.js';
import type { Locator } from './validate.js';

/** Where a cell's value came from, so an invalid cell points at the sweep entry that made it. */
export type CellOrigin = { axis: string; index: number } | { include: number };

export interface RawCell {
  coords: Record<string, Json>;
  origins: Record<string, CellOrigin>;
  raw: JsonObject;
}

interface SweepSection {
  axes?: Record<string, Json[]>;
  include?: JsonObject[];
  exclude?: JsonObject[];
  max_cells?: number;
}

/** Top-level keys a sweep may not vary: the sweep itself, the files a spec extends, the spec's name. */
export const UNSWEEPABLE = new Set(['sweep', 'extends', 'name']);

/** Sweep paths must name a real spec field (and not the sweep itself). */
export function checkSweepPaths(sweep: SweepSection, locateAt: Locator): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const check = (path: string, parts: string[]): void => {
    const segs = splitPath(path);
    if (UNSWEEPABLE.has(segs[0])) {
      issues.push({ ...locateAt(parts, 'key'), path, message: `'${segs[0]}' cannot be swept` });
      return;
    }
    if (schemaAt(segs) === undefined) {
      let known = 0;
      while (known < segs.length && schemaAt(segs.slice(0, known + 1)) !== undefined) known++;
      const parent = segs.slice(0, known);
      const guess = suggest(segs[known], keysAt(parent));
      issues.push({
        ...locateAt(parts, 'key'),
        path,
        message: `sweep path '${path}' is not a spec field ('${segs[known]}' is unknown${parent.length ? ` under '${parent.join('.')}'` : ''})`,
        suggestion: guess ? [...parent, guess, ...segs.slice(known + 1)].join('.') : undefined,
      });
    }
  };
  for (const path of Object.keys(sweep.axes ?? {})) check(path, ['sweep', 'axes', path]);
  (sweep.include ?? []).forEach((entry, i) => {
    for (const path of Object.keys(entry)) check(path, ['sweep', 'include', String(i), path]);
  });
  (sweep.exclude ?? []).forEach((entry, i) => {
    for (const path of Object.keys(entry)) check(path, ['sweep', 'exclude', String(i), path]);
  });
  return issues;
}

export function countCells(sweep: SweepSection | undefined): number {
  if (!sweep) return 1;
  const axes = Object.values(sweep.axes ?? {});
  const grid = axes.length === 0 ? (sweep.include?.length ? 0 : 1) : axes.reduce((n, values) => n * values.length, 1);
  return grid + (sweep.include?.length ?? 0);
}

/**
 * Expands the grid (every combination of the axes, first axis slowest), adds `include` cells and
 * drops cells matching an `exclude` entry. Duplicate cells (same swept values) are kept once.
 * `base` is the raw spec without its sweep section.
 */
export function expandSweep(base: JsonObject, sweep: SweepSection | undefined): RawCell[] {
  const cells: RawCell[] = [];
  const axes = Object.entries(sweep?.axes ?? {});
  const make = (coords: Record<string, Json>, origins: Record<string, CellOrigin>): RawCell => {
    const raw = structuredClone(base);
    for (const [path, value] of Object.entries(coords)) setPath(raw, path, structuredClone(value));
    return { coords, origins, raw };
  };
  const excluded = (coords: Record<string, Json>, raw: JsonObject): boolean =>
    (sweep?.exclude ?? []).some((rule) =>
      Object.entries(rule).every(([path, value]) => jsonEqual(path in coords ? coords[path] : getPath(raw, path), value)),
    );
  if (axes.length > 0 || !sweep?.include?.length) {
    const total = axes.reduce((n, [, values]) => n * values.length, 1);
    for (let i = 0; i < total; i++) {
      const coords: Record<string, Json> = {};
      const origins: Record<string, CellOrigin> = {};
      let rest = i;
      for (let a = axes.length - 1; a >= 0; a--) {
        const [path, values] = axes[a];
        const idx = rest % values.length;
        rest = Math.floor(rest / values.length);
        coords[path] = values[idx];
        origins[path] = { axis: path, index: idx };
      }
      const ordered: Record<string, Json> = {};
      for (const [path] of axes) ordered[path] = coords[path];
      const cell = make(ordered, origins);
      if (!excluded(ordered, cell.raw)) cells.push(cell);
    }
  }
  (sweep?.include ?? []).forEach((entry, i) => {
    const origins: Record<string, CellOrigin> = {};
    for (const path of Object.keys(entry)) origins[path] = { include: i };
    cells.push(make({ ...entry }, origins));
  });
  // Cells with the same swept values are the same cell (an include repeating a grid point).
  const seen = new Set<string>();
  return cells.filter((c) => {
    const id = canonicalJson(c.coords);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
