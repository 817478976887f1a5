import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node, type Document } from 'yaml';
import { SpecError, type SpecIssue } from './errors.js';
import type { Json } from './paths.js';

/** A parsed YAML file that still knows where each value was written. */
export interface SourceDoc {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
  value: Json;
}

export interface Position {
  line: number;
  col: number;
}

/** Aliases are legitimate in specs (shared protocols), but billions-of-laughs expansion is not. */
const MAX_ALIAS_COUNT = 64;
const MAX_SPEC_BYTES = 1 << 20;

export function parseSource(file: string, text: string): SourceDoc {
  if (text.length > MAX_SPEC_BYTES) {
    throw new SpecError([{ file, line: 0, col: 0, path: '', message: `spec is ${text.length} bytes; the limit is ${MAX_SPEC_BYTES}` }]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, strict: true });
  const issues: SpecIssue[] = [];
  for (const err of [...doc.errors, ...doc.warnings]) {
    const pos = err.linePos?.[0] ?? { line: 0, col: 0 };
    const firstLine = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    issues.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${firstLine}` });
  }
  if (issues.length > 0) throw new SpecError(issues);
  let value: Json;
  try {
    value = (doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {}) as Json;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new SpecError([
      {
        file,
        line: 1,
        col: 1,
        path: '',
        message: /alias/i.test(msg)
          ? `YAML aliases expand too much (more than ${MAX_ALIAS_COUNT} alias uses): refused as a likely alias bomb`
          : `YAML: ${msg}`,
      },
    ]);
  }
  return { file, doc, lines, value };
}

function pos(src: SourceDoc, node: Node | null | undefined): Position | undefined {
  const offset = node?.range?.[0];
  if (offset === undefined) return undefined;
  return src.lines.linePos(offset);
}

/**
 * Position of `parts` in the document: of the key when `at` is 'key' (unknown keys), of the value
 * otherwise. Falls back to the deepest ancestor that exists, so every issue gets a line.
 */
export function locate(src: SourceDoc, parts: string[], at: 'key' | 'value' = 'value'): Position | undefined {
  let node: unknown = src.doc.contents;
  let best = pos(src, node as Node) ?? { line: 1, col: 1 };
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const last = i === parts.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (!pair) return best;
      const keyPos = pos(src, pair.key as Node);
      if (last && at === 'key') return keyPos ?? best;
      const valuePos = pos(src, pair.value as Node);
      best = valuePos ?? keyPos ?? best;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(part)];
      if (item === undefined) return best;
      best = pos(src, item as Node) ?? best;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

/** Whether the document itself writes `parts` (used to find which file of an `extends` chain set a value). */
export function defines(src: SourceDoc, parts: string[]): boolean {
  let node: unknown = src.doc.contents;
  for (const part of parts) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (!pair) return false;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(part)];
      if (node === undefined) return false;
    } else {
      return false;
    }
  }
  return true;
}
