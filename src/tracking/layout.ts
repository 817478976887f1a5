import { join } from 'node:path';

/**
 * Paths inside the store root (default `.metadd/`). The store module owns `objects/`
 * (src/store/layout.ts); tracking reads artifacts through that same definition.
 */
export const DEFAULT_ROOT = '.metadd';

export { objectPath as objectDir } from '../store/layout.js';

export function runsDir(root: string): string {
  return join(root, 'runs');
}

export function runDir(root: string, runId: string): string {
  assertSafeId(runId, 'run id');
  return join(root, 'runs', runId);
}

/** Per-destination sync state of stages, shared by every run that computed or reused them. */
export function stageSyncDir(root: string, destinationId: string): string {
  return join(root, 'sync', destinationId);
}

/**
 * Ids become directory names and MLflow search-filter literals; restricting the alphabet keeps
 * both free of quoting problems (a `'` in a filter literal or a `/` in a path).
 */
export function assertSafeId(id: string, what: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/.test(id)) {
    throw new Error(`invalid ${what} ${JSON.stringify(id)}: use letters, digits, '.', '_', ':', '-' (at most 200)`);
  }
}
