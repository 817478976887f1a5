import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { StageNode } from '../dag/compile.js';
import type { Store } from '../store/store.js';
import { parseEvent, type WorkerEvent } from './events.js';
import type { Executor } from './scheduler.js';
import type { WorkerOutcome } from './worker.js';

export const CLI_ENTRY = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export function tailOf(path: string, lines = 20): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs each stage as `metadd exec-stage` in its own Node process (one WASM thread each). */
export class LocalExecutor implements Executor {
  readonly name = 'local';

  constructor(
    private readonly store: Store,
    private readonly options: { force?: boolean } = {},
  ) {}

  async run(node: StageNode, onEvent: (event: WorkerEvent) => void, signal: AbortSignal): Promise<WorkerOutcome> {
    const log = this.store.logPath(node.key);
    const args = [CLI_ENTRY, 'exec-stage', '--store', this.store.root, node.key];
    if (this.options.force) args.push('--force');
    const child = execa(process.execPath, args, {
      stdout: 'pipe',
      stderr: { file: log, append: true },
      cancelSignal: signal,
      forceKillAfterDelay: 10_000,
      reject: false,
      buffer: false,
    });
    let outcome: WorkerOutcome = 'computed';
    for await (const line of child.iterable({ from: 'stdout' })) {
      const event = parseEvent(String(line));
      if (!event) continue;
      if (event.type === 'status' && event.status === 'cached') outcome = 'cached';
      onEvent(event);
    }
    const result = await child;
    if (result.isCanceled) throw new Error('interrupted');
    if (result.exitCode !== 0) {
      const tail = tailOf(log);
      throw new Error(`exited with code ${String(result.exitCode ?? result.signal)}; log: ${log}${tail ? `\n${tail}` : ''}`);
    }
    return outcome;
  }
}
