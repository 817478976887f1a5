import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TrackRecord } from './records.js';
import { isNotFound } from './fs-atomic.js';

/**
 * Read a `records.jsonl`. A missing file is an empty list. A last line without its newline is
 * a write in progress (the appender writes whole lines), so it is left for the next read rather
 * than parsed: the sync acknowledges records by index and must never count a half line.
 * A malformed complete line is an error naming the file and line.
 */
export async function readRecords(file: string): Promise<TrackRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const end = text.lastIndexOf('\n');
  if (end < 0) return [];
  const lines = text.slice(0, end).split('\n');
  const out: TrackRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      throw new Error(`${file}:${i + 1}: not JSON: ${(err as Error).message}`, { cause: err });
    }
    out.push(toRecord(parsed, `${file}:${i + 1}`));
  }
  return out;
}

/** Append whole lines in one write so that a concurrent reader never sees a partial record. */
export async function appendRecords(file: string, records: readonly TrackRecord[]): Promise<void> {
  if (records.length === 0) return;
  await mkdir(dirname(file), { recursive: true });
  const text = records.map((r) => `${JSON.stringify(encodeRecord(r))}\n`).join('');
  await appendFile(file, text, 'utf8');
}

/** JSON has no NaN/Infinity (`JSON.stringify(NaN)` is `null`), so they are written as strings. */
function encodeRecord(r: TrackRecord): unknown {
  if (r.type === 'metric' && !Number.isFinite(r.value)) return { ...r, value: String(r.value) };
  return r;
}

function toRecord(value: unknown, where: string): TrackRecord {
  if (typeof value !== 'object' || value === null) throw new Error(`${where}: record is not an object`);
  const o = value as Record<string, unknown>;
  const str = (k: string): string => {
    const v = o[k];
    if (typeof v !== 'string') throw new Error(`${where}: ${o.type} record needs a string '${k}'`);
    return v;
  };
  const num = (k: string): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: ${o.type} record needs a finite number '${k}'`);
    return v;
  };
  switch (o.type) {
    case 'param':
      return { type: 'param', key: str('key'), value: str('value') };
    case 'tag':
      return { type: 'tag', key: str('key'), value: str('value') };
    case 'artifact':
      return { type: 'artifact', path: str('path') };
    case 'metric':
      return { type: 'metric', key: str('key'), value: metricValue(o.value, where), step: num('step'), timestamp: num('timestamp') };
    default:
      throw new Error(`${where}: unknown record type ${JSON.stringify(o.type)}`);
  }
}

/** Accepts the string forms written by `appendRecords` and `null` (what a plain JSON.stringify of NaN gives). */
function metricValue(v: unknown, where: string): number {
  if (typeof v === 'number') return v;
  if (v === null || v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  throw new Error(`${where}: metric value must be a number, got ${JSON.stringify(v)}`);
}
