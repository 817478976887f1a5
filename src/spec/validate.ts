import type { ErrorObject } from 'ajv';
import type { SpecIssue } from './errors.js';
import type { Located } from './load.js';
import { displayPath, isObject, pointerToPath, type Json, type JsonObject } from './paths.js';
import { experimentSchema, keysAt } from './schema.js';
import { suggest } from './suggest.js';
import { UNSWEEPABLE } from './sweep.js';

export type Locator = (parts: string[], at: 'key' | 'value') => Located;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string '${value.length > 40 ? `${value.slice(0, 40)}...` : value}'`;
  return `${typeof value} ${String(value)}`;
}

function typeWords(t: unknown): string {
  const words: Record<string, string> = {
    integer: 'an integer',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    object: 'a mapping (key: value pairs)',
    array: 'a list',
    null: 'null',
  };
  const list = Array.isArray(t) ? t : [t];
  return list.map((x) => words[String(x)] ?? String(x)).join(' or ');
}

function toIssue(err: ErrorObject, locateAt: Locator): SpecIssue {
  const parts = pointerToPath(err.instancePath);
  const base = (p: string[], at: 'key' | 'value'): Omit<SpecIssue, 'message'> => ({ ...locateAt(p, at), path: displayPath(p) });
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String((err.params as { additionalProperty: string }).additionalProperty);
      const full = [...parts, key];
      return { ...base(full, 'key'), message: `unknown key '${key}'`, suggestion: suggest(key, keysAt(parts)) };
    }
    case 'required': {
      const key = String((err.params as { missingProperty: string }).missingProperty);
      return { ...base(parts, 'key'), path: displayPath([...parts, key]), message: `missing required key '${key}'` };
    }
    case 'enum': {
      const allowed = ((err.params as { allowedValues: unknown[] }).allowedValues ?? []).map(String);
      return {
        ...base(parts, 'value'),
        message: `${describeValue(err.data)} is not one of: ${allowed.join(', ')}`,
        suggestion: typeof err.data === 'string' ? suggest(err.data, allowed) : undefined,
      };
    }
    case 'type': {
      const expected = (err.params as { type: unknown }).type;
      const at = base(parts, 'value');
      return { ...at, message: `expected ${typeWords(expected)}, got ${describeValue(err.data)}`, hint: sweepHint(parts, expected, err.data, at) };
    }
    case 'pattern':
      return { ...base(parts, 'value'), message: `${describeValue(err.data)} does not match the pattern ${String((err.params as { pattern: string }).pattern)}` };
    case 'propertyNames':
      return { ...base(parts, 'key'), message: `invalid key: ${err.message ?? ''}` };
    default:
      return { ...base(parts, 'value'), message: `${err.message ?? err.keyword}, got ${describeValue(err.data)}` };
  }
}

const SCALAR_TYPES = new Set(['integer', 'number', 'string', 'boolean']);

/**
 * The two ways a sweep is most often miswritten: a list where one value belongs (meant as several
 * runs: those go under sweep.axes, one cell each; only for paths an axis can name, no list indices),
 * and an axis given one value instead of a list of them.
 */
function sweepHint(parts: string[], expected: unknown, data: unknown, at: Located): string | undefined {
  const types = (Array.isArray(expected) ? expected : [expected]).map(String);
  // JSON is YAML's flow style; the items are joined by hand so that a comma inside a string stays as written.
  const flow = (items: unknown[]): string => `[${items.map((v) => JSON.stringify(v)).join(', ')}]`;
  const onLine = at.override !== undefined;
  if (parts.length === 3 && parts[0] === 'sweep' && parts[1] === 'axes' && types.includes('array') && !isObject(data as Json)) {
    const one = flow([data]);
    return onLine
      ? `an axis lists its values, even a single one: --set 'sweep.axes.${parts[2]}=${one}'`
      : `an axis lists its values, even a single one: ${parts[2]}: ${one}`;
  }
  const scalar = types.every((t) => SCALAR_TYPES.has(t));
  if (!Array.isArray(data) || !scalar || parts.length === 0 || UNSWEEPABLE.has(parts[0])) return undefined;
  // A sweep path is dotted keys: a value inside a list (an index in the path) cannot be an axis.
  if (parts.some((p) => /^\d+$/.test(p))) return undefined;
  const dotted = parts.join('.');
  return onLine
    ? `to run one cell per value, sweep it: --set 'sweep.axes.${dotted}=${flow(data)}'`
    : `to run one cell per value, sweep it: sweep: {axes: {${dotted}: ${flow(data)}}}`;
}

/**
 * ajv reports every failing branch of an anyOf ("must be one of ...", "must be object", ...). Keep the
 * errors of the branches that fit the value's own shape, and fall back to one "does not fit" message
 * when no branch does.
 */
function pruneAnyOf(errors: ErrorObject[]): ErrorObject[] {
  const drop = new Set<ErrorObject>();
  for (const a of errors.filter((e) => e.keyword === 'anyOf')) {
    const shaped = a.data !== null && typeof a.data === 'object';
    // ajv's schemaPath does not say which branch an error came from once a branch follows a $ref,
    // so judge by the value's shape: a mapping cannot fail a scalar branch usefully, and vice versa.
    const atPath = errors.filter((e) => e !== a && e.instancePath === a.instancePath);
    for (const e of atPath) if (e.keyword === 'type' || (shaped && e.keyword === 'enum')) drop.add(e);
    const remaining = errors.filter(
      (e) => e !== a && !drop.has(e) && (e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`)),
    );
    if (remaining.length > 0) drop.add(a);
  }
  return errors.filter((e) => !drop.has(e));
}

/** Validates `value` (applying schema defaults in place) and returns every issue, located. */
export function validateAgainstSchema(value: JsonObject, locateAt: Locator): SpecIssue[] {
  const { validate } = experimentSchema();
  if (validate(value)) return [];
  const errors = pruneAnyOf(validate.errors ?? []);
  const seen = new Set<string>();
  const issues: SpecIssue[] = [];
  for (const err of errors) {
    const issue = err.keyword === 'anyOf'
      ? { ...locateAt(pointerToPath(err.instancePath), 'value'), path: displayPath(pointerToPath(err.instancePath)), message: `${describeValue(err.data)} does not fit: ${anyOfWords(err)}` }
      : toIssue(err, locateAt);
    const id = `${issue.file}:${issue.line}:${issue.col}:${issue.message}`;
    if (!seen.has(id)) {
      seen.add(id);
      issues.push(issue);
    }
  }
  return issues;
}

function anyOfWords(err: ErrorObject): string {
  const branches = (err.schema as Json[] | undefined) ?? [];
  const words = branches.map((b) => (isObject(b) && typeof b.type === 'string' ? typeWords(b.type) : isObject(b) && b.$ref ? String(b.$ref).split('/').pop() : 'another form'));
  return `expected ${words.join(' or ')}`;
}
