/** Dotted-path access into plain JSON objects ("distill.ipc", "eval.architectures"). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function splitPath(path: string): string[] {
  return path === '' ? [] : path.split('.');
}

export function getPath(root: Json, path: string): Json | undefined {
  let node: Json | undefined = root;
  for (const part of splitPath(path)) {
    if (!isObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

/** Sets `path` (dotted, or its keys) in `root` (mutating), creating intermediate objects. */
export function setPath(root: JsonObject, path: string | readonly string[], value: Json): void {
  const parts = typeof path === 'string' ? splitPath(path) : path;
  let node: JsonObject = root;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (!isObject(next)) node[part] = {};
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1]] = value;
}

/** Objects merge key by key; arrays and scalars from `over` replace those of `base`. */
export function deepMerge(base: Json, over: Json): Json {
  if (isObject(base) && isObject(over)) {
    const out: JsonObject = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
    return out;
  }
  return over;
}

/**
 * JSON with object keys sorted: the canonical form hashed into cache keys. Serialises directly
 * (no sorted copy of the value) because planning a large sweep hashes tens of thousands of these.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  let out = '{';
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** Converts an ajv instancePath (JSON pointer) to our dotted form; array indices become [i]. */
export function pointerToPath(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function displayPath(parts: (string | number)[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number' || /^\d+$/.test(p)) out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}
