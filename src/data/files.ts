import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { resolve } from 'node:path';

/** A problem with one source file or folder: the message always starts with its path. */
export class DatasetSourceError extends Error {
  constructor(
    readonly file: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${detail}`, options);
    this.name = 'DatasetSourceError';
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function describeFsError(file: string, err: unknown, expected: string): DatasetSourceError {
  const code = errnoCode(err);
  if (code === 'ENOENT') return new DatasetSourceError(file, `not found (expected ${expected})`, { cause: err });
  if (code === 'EISDIR') return new DatasetSourceError(file, `is a directory (expected ${expected})`, { cause: err });
  if (code === 'ENOTDIR') return new DatasetSourceError(file, `is not a directory (expected ${expected})`, { cause: err });
  const reason = err instanceof Error ? err.message : String(err);
  return new DatasetSourceError(file, `cannot be read (${reason}); expected ${expected}`, { cause: err });
}

interface CachedHash {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

// Keyed by absolute path and validated against size, mtime and inode, so an edited file is re-hashed.
// Lives for the process: the CLI validates a spec and then runs it, hashing each source once.
const hashCache = new Map<string, CachedHash>();

/**
 * A file modified this recently may be rewritten again within the mtime granularity of its file
 * system without any visible stat change (git's "racy" case): such files are hashed but not cached.
 */
const RACY_MS = 2000;

function remember(abs: string, st: Stats, bytes: Buffer): string {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (Date.now() - st.mtimeMs > RACY_MS) hashCache.set(abs, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256 });
  return sha256;
}

function cached(abs: string, st: Stats): string | undefined {
  const hit = hashCache.get(abs);
  return hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && hit.ino === st.ino ? hit.sha256 : undefined;
}

function statFile(file: string, expected: string): Stats {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    throw describeFsError(file, err, expected);
  }
  if (!st.isFile()) throw new DatasetSourceError(file, `is not a regular file (expected ${expected})`);
  return st;
}

/** Read a whole source file; the bytes are hashed on the way so that a later digest costs nothing. */
export function readSourceFile(file: string, expected: string): Buffer {
  const abs = resolve(file);
  const st = statFile(file, expected);
  let bytes: Buffer;
  try {
    bytes = readFileSync(abs);
  } catch (err) {
    throw describeFsError(file, err, expected);
  }
  if (cached(abs, st) === undefined) remember(abs, st, bytes);
  return bytes;
}

function hashFile(file: string, expected: string): { sha256: string; size: number } {
  const abs = resolve(file);
  const st = statFile(file, expected);
  const hit = cached(abs, st);
  if (hit !== undefined) return { sha256: hit, size: st.size };
  let bytes: Buffer;
  try {
    bytes = readFileSync(abs);
  } catch (err) {
    throw describeFsError(file, err, expected);
  }
  return { sha256: remember(abs, st, bytes), size: bytes.length };
}

/** sha256 of a file's bytes, from the in-memory cache when the file is unchanged. */
export function fileSha256(file: string, expected = 'a dataset file'): string {
  return hashFile(file, expected).sha256;
}

/** A file that contributes to a dataset digest, under a location-independent role name. */
export interface SourceFile {
  /** e.g. `train_images`, or the path relative to the dataset folder. */
  role: string;
  path: string;
}

/**
 * The dataset digest: sha256 over one line `role \t size \t sha256(bytes) \n` per file, in the
 * order given (each loader fixes its order). Roles instead of paths keep the digest the same when
 * the dataset folder moves; per-file hashes let an unchanged file be served from the cache.
 */
export function digestSources(files: SourceFile[]): string {
  const h = createHash('sha256').update('metadd-dataset-sources/1\n');
  for (const f of files) {
    const { sha256, size } = hashFile(f.path, 'a dataset file');
    h.update(`${f.role}\t${size}\t${sha256}\n`);
  }
  return h.digest('hex');
}

/** Entries of a folder, sorted naturally, hidden entries skipped; errors name the folder. */
export function listDir(dir: string, expected: string): { name: string; isDir: boolean }[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw describeFsError(dir, err, expected);
  }
  return entries
    .filter((e) => !e.name.startsWith('.'))
    .map((e) => ({ name: e.name, isDir: e.isDirectory() || (e.isSymbolicLink() && isDir(`${dir}/${e.name}`)) }))
    .sort((a, b) => naturalCompare(a.name, b.name));
}

export function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Natural order (`img_2` before `img_10`), independent of locale so that every machine agrees:
 * digit runs compare by numeric value (then by length, so `01` and `1` still differ), the rest by code unit.
 */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    const xd = /^\d/.test(x);
    const yd = /^\d/.test(y);
    if (xd && yd) {
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      if (x.length !== y.length) return x.length - y.length;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Non-empty trimmed lines of an optional text file (class-name lists); undefined when the file is absent. */
export function readLinesIfPresent(file: string): string[] | undefined {
  if (!isFile(file)) return undefined;
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}
