import { readFileSync } from 'node:fs';

/** A JSON file's content, or undefined when it is missing or unreadable: for files whose absence only costs a detail. */
export function readJsonIfReadable<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
