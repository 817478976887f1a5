import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parse as parseYamlValue } from 'yaml';
import { SpecError, type SpecIssue } from './errors.js';
import { parseSource, locate, defines, type SourceDoc, type Position } from './source.js';
import { deepMerge, isObject, setPath, splitPath, type Json, type JsonObject } from './paths.js';

const MAX_EXTENDS_DEPTH = 8;

export interface Override {
  path: string;
  /** The keys `path` names, outermost first (a sweep axis, itself a dotted path, is one key). */
  parts: string[];
  value: Json;
  /** As typed, for error messages: `--set distill.ipc=10`. */
  text: string;
}

export interface LoadedSpec {
  /** Absolute path of the spec file. */
  file: string;
  projectRoot: string;
  /** The merged spec (extends chain, then overrides), before defaults. */
  raw: JsonObject;
  /** Files that contributed, base first, the spec itself last. */
  sources: SourceDoc[];
  overrides: Override[];
}

/** Where an issue at `parts` was written: an override, the file that defines it, or its nearest ancestor. */
export interface Located {
  /** A file, or `command line (<override>)` for an override. */
  file: string;
  line: number;
  col: number;
  /** The text of the --set override that wrote it, when one did. */
  override?: string;
}

export function findProjectRoot(specFile: string): string {
  let dir = dirname(resolve(specFile));
  for (;;) {
    if (existsSync(resolve(dir, 'package.json')) || existsSync(resolve(dir, '.git'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return dirname(resolve(specFile));
    dir = parent;
  }
}

/** True when `child` (after resolving symlinks of its existing part) lies inside `parent`. */
export function isInside(parent: string, child: string): boolean {
  const real = (p: string): string => {
    let probe = p;
    const rest: string[] = [];
    while (!existsSync(probe)) {
      const up = dirname(probe);
      if (up === probe) break;
      rest.unshift(probe.slice(up.length + 1));
      probe = up;
    }
    return resolve(realpathSync(probe), ...rest);
  };
  const rel = relative(real(parent), real(child));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new SpecError([
      { file: `--set ${text}`, line: 0, col: 0, path: '', message: "expected KEY=VALUE with a dotted key, e.g. --set distill.ipc=10" },
    ]);
  }
  const path = text.slice(0, eq).trim();
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(path)) {
    throw new SpecError([{ file: `--set ${text}`, line: 0, col: 0, path, message: `'${path}' is not a dotted key like distill.ipc` }]);
  }
  let value: Json;
  try {
    value = parseYamlValue(text.slice(eq + 1), { maxAliasCount: 0 }) as Json;
  } catch (err) {
    throw new SpecError([
      { file: `--set ${text}`, line: 0, col: 0, path, message: `value is not valid YAML: ${(err as Error).message.split('\n')[0]}` },
    ]);
  }
  return { path, parts: overrideParts(path), value: value ?? null, text: `--set ${text}` };
}

/**
 * The keys an override's dotted path names. Under `sweep.axes` every key is an axis named by a dotted
 * path of the spec, so the rest of the path is that one key: `sweep.axes.distill.ipc=[1, 10]` sets the
 * axis `distill.ipc`, as `sweep: {axes: {distill.ipc: [1, 10]}}` does in a file.
 */
export function overrideParts(path: string): string[] {
  const parts = splitPath(path);
  return parts.length > 3 && parts[0] === 'sweep' && parts[1] === 'axes' ? [...parts.slice(0, 2), parts.slice(2).join('.')] : parts;
}

export function loadSpec(file: string, sets: string[] = []): LoadedSpec {
  const abs = resolve(file);
  const projectRoot = findProjectRoot(abs);
  const sources: SourceDoc[] = [];
  const raw = loadWithExtends(abs, projectRoot, sources, [], undefined);
  const overrides = sets.map(parseOverride);
  for (const o of overrides) setPath(raw, o.parts, o.value);
  return { file: abs, projectRoot, raw, sources, overrides };
}

function readSource(file: string, from: { src: SourceDoc; pos: Position } | undefined): SourceDoc {
  if (!existsSync(file)) {
    const where = from ? { file: from.src.file, line: from.pos.line, col: from.pos.col } : { file, line: 0, col: 0 };
    throw new SpecError([{ ...where, path: from ? 'extends' : '', message: `spec file not found: ${file}` }]);
  }
  return parseSource(file, readFileSync(file, 'utf8'));
}

function loadWithExtends(
  file: string,
  projectRoot: string,
  sources: SourceDoc[],
  chain: string[],
  from: { src: SourceDoc; pos: Position } | undefined,
): JsonObject {
  const src = readSource(file, from);
  if (!isObject(src.value)) {
    throw new SpecError([{ file, line: 1, col: 1, path: '', message: 'a spec must be a YAML mapping (key: value pairs) at the top level' }]);
  }
  const ext = src.value.extends;
  let base: Json = {};
  if (ext !== undefined) {
    const list = Array.isArray(ext) ? ext : [ext];
    const issues: SpecIssue[] = [];
    list.forEach((entry, i) => {
      const parts = Array.isArray(ext) ? ['extends', String(i)] : ['extends'];
      const at = locate(src, parts) ?? { line: 1, col: 1 };
      const here = { file, line: at.line, col: at.col, path: 'extends' };
      if (typeof entry !== 'string') {
        issues.push({ ...here, message: 'extends must name a spec file (a string) or a list of them' });
        return;
      }
      const target = resolve(dirname(file), entry);
      if (!isInside(projectRoot, target)) {
        issues.push({ ...here, message: `extends '${entry}' resolves outside the project root ${projectRoot}` });
        return;
      }
      if (chain.includes(target) || target === file) {
        issues.push({ ...here, message: `extends cycle: ${[...chain, file, target].map((p) => relative(projectRoot, p)).join(' -> ')}` });
        return;
      }
      if (chain.length >= MAX_EXTENDS_DEPTH) {
        issues.push({ ...here, message: `extends chain deeper than ${MAX_EXTENDS_DEPTH} files` });
        return;
      }
      try {
        base = deepMerge(base, loadWithExtends(target, projectRoot, sources, [...chain, file], { src, pos: at }));
      } catch (err) {
        if (err instanceof SpecError) issues.push(...err.issues);
        else throw err;
      }
    });
    if (issues.length > 0) throw new SpecError(issues);
  }
  sources.push(src);
  const own: JsonObject = { ...src.value };
  delete own.extends;
  return deepMerge(base, own) as JsonObject;
}

/** Where a problem at `parts` was written, searching overrides, then the files from the spec back to its bases. */
export function locateIn(spec: LoadedSpec, parts: string[], at: 'key' | 'value' = 'value'): Located {
  const dotted = parts.join('.');
  for (let i = spec.overrides.length - 1; i >= 0; i--) {
    const o = spec.overrides[i];
    if (dotted === o.path || dotted.startsWith(`${o.path}.`) || o.path.startsWith(`${dotted}.`)) {
      return { file: `command line (${o.text})`, line: 0, col: 0, override: o.text };
    }
  }
  for (let i = spec.sources.length - 1; i >= 0; i--) {
    const src = spec.sources[i];
    if (defines(src, parts)) {
      const p = locate(src, parts, at) ?? { line: 1, col: 1 };
      return { file: src.file, ...p };
    }
  }
  // Not written anywhere (a missing required key): point at the deepest ancestor the spec itself has.
  const main = spec.sources[spec.sources.length - 1];
  for (let n = parts.length - 1; n >= 0; n--) {
    for (let i = spec.sources.length - 1; i >= 0; i--) {
      if (defines(spec.sources[i], parts.slice(0, n))) {
        const p = locate(spec.sources[i], parts.slice(0, n), 'key') ?? { line: 1, col: 1 };
        return { file: spec.sources[i].file, ...p };
      }
    }
  }
  return { file: main.file, line: 1, col: 1 };
}

export { splitPath };
