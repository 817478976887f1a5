/**
 * Worker -> scheduler messages, written as single lines `@@metadd <json>` on the worker's stdout so
 * that the same worker command works under the local executor and inside a Slurm job (log file).
 */
export type WorkerEvent =
  | { type: 'progress'; key: string; done: number; total: number; message?: string }
  | { type: 'status'; key: string; status: 'started' | 'waiting' | 'cached' | 'done'; detail?: string };

export const EVENT_PREFIX = '@@metadd ';

export function emit(event: WorkerEvent): void {
  process.stdout.write(`${EVENT_PREFIX}${JSON.stringify(event)}\n`);
}

export function parseEvent(line: string): WorkerEvent | undefined {
  if (!line.startsWith(EVENT_PREFIX)) return undefined;
  try {
    return JSON.parse(line.slice(EVENT_PREFIX.length)) as WorkerEvent;
  } catch {
    return undefined;
  }
}
