/**
 * Flatten a nested spec or stage-parameter object into MLflow params with dotted keys:
 * `{ distill: { lr: 0.1 } }` -> `distill.lr = "0.1"`. Arrays of scalars stay one param holding
 * their JSON (`[0.1,0.01]`) so a sweep list reads as one value in the UI; arrays that contain
 * objects are indexed (`models.0.arch`) because their JSON would soon pass the 6000-char limit.
 * Empty objects and arrays are kept (`{}`, `[]`) so that "set but empty" is not lost.
 */
export function flattenParams(value: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  walk(value, prefix, out);
  return out;
}

function walk(value: unknown, key: string, out: Record<string, string>): void {
  if (Array.isArray(value)) {
    if (value.length === 0 || value.every((v) => !isContainer(v))) {
      put(out, key, JSON.stringify(value));
      return;
    }
    value.forEach((v, i) => walk(v, join(key, String(i)), out));
    return;
  }
  if (isPlainObject(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) {
      // An empty top-level object is simply "no params".
      if (key !== '') put(out, key, '{}');
      return;
    }
    for (const [k, v] of entries) walk(v, join(key, k), out);
    return;
  }
  put(out, key, scalarToString(value));
}

function put(out: Record<string, string>, key: string, value: string): void {
  // A top-level scalar has no name to log it under.
  if (key === '') throw new Error('flattenParams: a scalar needs a prefix to become a param');
  out[key] = value;
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

function isContainer(v: unknown): boolean {
  return Array.isArray(v) || isPlainObject(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function scalarToString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? String(v);
}
