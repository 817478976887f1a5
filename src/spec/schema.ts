import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { isObject, type Json, type JsonObject } from './paths.js';

/** schemas/ sits at the package root; from dist/src/spec or src/spec find it by walking up. */
function schemaPath(): string {
  const candidates = ['../../schemas/experiment.schema.json', '../../../schemas/experiment.schema.json'];
  for (const rel of candidates) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    try {
      readFileSync(p);
      return p;
    } catch {
      // try the next layout
    }
  }
  throw new Error('schemas/experiment.schema.json not found next to the metadd package');
}

let cached: { schema: JsonObject; validate: ValidateFunction } | undefined;

export function experimentSchema(): { schema: JsonObject; validate: ValidateFunction } {
  if (!cached) {
    const schema = JSON.parse(readFileSync(schemaPath(), 'utf8')) as JsonObject;
    const ajv = new Ajv2020({ allErrors: true, useDefaults: true, verbose: true, strict: true, allowUnionTypes: true });
    cached = { schema, validate: ajv.compile(schema) };
  }
  return cached;
}

/** Follows a local `$ref` ("#/$defs/x"). */
export function deref(schema: JsonObject, node: Json | undefined): JsonObject | undefined {
  let cur = node;
  for (let guard = 0; guard < 16 && isObject(cur) && typeof cur.$ref === 'string'; guard++) {
    const parts = cur.$ref.replace(/^#\//, '').split('/');
    let target: Json | undefined = schema;
    for (const p of parts) target = isObject(target) ? target[p] : undefined;
    cur = target;
  }
  return isObject(cur) ? cur : undefined;
}

/** The object schemas a value at this node may be (following $ref and anyOf/oneOf branches). */
function objectBranches(schema: JsonObject, node: Json | undefined): JsonObject[] {
  const s = deref(schema, node);
  if (!s) return [];
  const out: JsonObject[] = [];
  if (isObject(s.properties) || isObject(s.additionalProperties)) out.push(s);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = s[key];
    if (Array.isArray(list)) for (const b of list) out.push(...objectBranches(schema, b));
  }
  return out;
}

function arrayBranches(schema: JsonObject, node: Json | undefined): JsonObject[] {
  const s = deref(schema, node);
  if (!s) return [];
  const out: JsonObject[] = s.items !== undefined ? [s] : [];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = s[key];
    if (Array.isArray(list)) for (const b of list) out.push(...arrayBranches(schema, b));
  }
  return out;
}

/** The schema of the property at `parts`, or undefined when the path does not exist in the schema. */
export function schemaAt(parts: string[]): JsonObject | undefined {
  const { schema } = experimentSchema();
  let nodes: JsonObject[] = [schema];
  for (const part of parts) {
    const next: JsonObject[] = [];
    for (const n of nodes) {
      if (/^\d+$/.test(part)) {
        for (const arr of arrayBranches(schema, n)) {
          const d = deref(schema, arr.items);
          if (d) next.push(d);
        }
        continue;
      }
      for (const b of objectBranches(schema, n)) {
        const props = b.properties;
        if (isObject(props) && part in props) {
          const d = deref(schema, props[part]);
          if (d) next.push(d);
        } else if (isObject(b.additionalProperties)) {
          const d = deref(schema, b.additionalProperties);
          if (d) next.push(d);
        }
      }
    }
    if (next.length === 0) return undefined;
    nodes = next;
  }
  return nodes[0];
}

/** Property names allowed at `parts` (for "did you mean"). */
export function keysAt(parts: string[]): string[] {
  const { schema } = experimentSchema();
  const node = parts.length === 0 ? schema : schemaAt(parts);
  const keys = new Set<string>();
  for (const b of objectBranches(schema, node)) if (isObject(b.properties)) for (const k of Object.keys(b.properties)) keys.add(k);
  return [...keys];
}
