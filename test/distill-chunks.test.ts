import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rowChunks } from '../src/distill/chunks.js';

describe('rowChunks', () => {
  it('covers every row once, in order, with shares summing to 1', () => {
    for (const [n, size] of [[7, 3], [6, 3], [5, 10], [1, 1], [9, 0], [9, -1]]) {
      const chunks = rowChunks(n, size);
      assert.equal(chunks[0].start, 0);
      assert.equal(chunks[chunks.length - 1].end, n);
      chunks.forEach((c, i) => {
        if (i > 0) assert.equal(c.start, chunks[i - 1].end);
        assert.ok(c.end > c.start && (size <= 0 || c.end - c.start <= size));
        assert.equal(c.share, (c.end - c.start) / n);
      });
      assert.ok(Math.abs(chunks.reduce((s, c) => s + c.share, 0) - 1) < 1e-12);
    }
    assert.deepEqual(rowChunks(7, 3).map((c) => [c.start, c.end]), [[0, 3], [3, 6], [6, 7]]);
    assert.equal(rowChunks(9, 0).length, 1);
  });

  it('an empty set has no chunks', () => {
    assert.deepEqual(rowChunks(0, 4), []);
  });
});
