import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { Dag } from '../src/dag/compile.js';
import { createProgressView } from '../src/exec/progress.js';

/** What cli-progress asks of a terminal, recording what is written. */
class FakeTerminal extends Writable {
  readonly isTTY = true;
  readonly columns = 120;
  readonly rows = 40;
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
  cursorTo(_x: number, _y?: number | (() => void), cb?: () => void): boolean {
    cb?.();
    return true;
  }
  moveCursor(_dx: number, _dy: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  clearLine(_dir: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  clearScreenDown(cb?: () => void): boolean {
    cb?.();
    return true;
  }
  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }
}

test('on a terminal, a stage waiting for another process gets a line with its progress, and the last result is written before the bars stop', () => {
  const terminal = new FakeTerminal();
  // The view reads only the order and each node's label.
  const dag = { order: ['k1'], nodes: new Map([['k1', { label: 'eval convnet <- dm ipc=10 seed=0' }]]) } as unknown as Dag;
  const view = createProgressView(dag, terminal as unknown as NodeJS.WriteStream);
  view.onEvent({ type: 'status', key: 'k1', status: 'waiting', detail: 'another process is computing this stage (5/10; 3 s in)' });
  view.onEvent({ type: 'result', result: { key: 'k1', kind: 'eval', label: 'eval convnet <- dm ipc=10 seed=0', status: 'computed', seconds: 12.5, cpuSeconds: 12.1 } });
  view.stop();
  assert.match(terminal.text, /waiting {2}eval convnet <- dm ipc=10 seed=0: another process is computing this stage \(5\/10; 3 s in\)\n/);
  // cli-progress keeps logged lines until its next redraw, which stop() alone does not do.
  assert.match(terminal.text, /\[1\/1\] computed eval convnet <- dm ipc=10 seed=0 in 12\.5s \(12\.1s CPU\)\n/);
});
