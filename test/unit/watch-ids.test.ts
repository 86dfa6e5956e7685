// The main thread's set of a stream's watch ids, against a plain Set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WatchIdSet } from '../../src/server/watch-ids.js';

test('watch id set: has, add, delete and forEach agree with a Set, for ids below and above the bitmap bound and negative ones', () => {
  const ids = new WatchIdSet();
  const model = new Set<number>();
  let seed = 9;
  const rand = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296; };
  const pick = () => {
    const r = rand();
    if (r < 0.7) return Math.floor(rand() * 3000);
    if (r < 0.8) return (1 << 20) - 2 + Math.floor(rand() * 4); // both sides of the bitmap's bound
    if (r < 0.9) return 2 ** 40 + Math.floor(rand() * 10);
    return -1 - Math.floor(rand() * 5);
  };
  for (let step = 0; step < 20_000; step++) {
    const id = pick();
    assert.equal(ids.has(id), model.has(id), `has ${id}`);
    if (rand() < 0.6) assert.equal(ids.add(id), !model.has(id) && model.add(id) !== undefined, `add ${id}`);
    else assert.equal(ids.delete(id), model.delete(id), `delete ${id}`);
    assert.equal(ids.size, model.size);
  }
  const seen: number[] = [];
  ids.forEach((id) => seen.push(id));
  assert.deepEqual(seen.sort((a, b) => a - b), [...model].sort((a, b) => a - b));
  ids.clear();
  assert.equal(ids.size, 0);
  assert.equal(ids.has(seen[0]!), false);
});
