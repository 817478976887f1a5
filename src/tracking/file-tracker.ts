import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrackRecord, Tracker } from './records.js';

/** Appends records to `records.jsonl` in a stage's output directory (the local source of truth). */
export class FileTracker implements Tracker {
  private readonly path: string;

  constructor(dir: string) {
    this.path = join(dir, 'records.jsonl');
  }

  private write(record: TrackRecord): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  param(key: string, value: string | number | boolean): void {
    this.write({ type: 'param', key, value: String(value) });
  }

  metric(key: string, value: number, step = 0): void {
    this.write({ type: 'metric', key, value, step, timestamp: Date.now() });
  }

  tag(key: string, value: string): void {
    this.write({ type: 'tag', key, value });
  }

  artifact(relativePath: string): void {
    this.write({ type: 'artifact', path: relativePath });
  }
}
