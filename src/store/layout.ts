import { join } from 'node:path';

/** Where the artifact of `key` lives in a store: the one definition of the objects/ layout. */
export function objectPath(root: string, key: string): string {
  return join(root, 'objects', key.slice(0, 2), key);
}
