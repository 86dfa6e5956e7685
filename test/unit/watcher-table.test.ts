// The compact watcher storage of a shard (ByteArena, KeyIndex, WatcherTable)
// against plain Maps, through enough adds and removes to grow and compact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteArena, compareBytes } from '../../src/common/byte-arena.js';
import { KeyIndex } from '../../src/workers/key-index.js';
import { WatcherTable, listAppend, listRemove, listSlots } from '../../src/workers/watcher-table.js';

/** A small seeded generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('byte arena: blocks keep their bytes through frees and compactions, and the buffer stays within twice the live bytes', () => {
  const offsets = new Map<number, number>();
  const arena = new ByteArena((tag, off) => offsets.set(tag, off), 256);
  const model = new Map<number, Buffer>();
  const rand = rng(7);
  let tag = 0;
  for (let step = 0; step < 20_000; step++) {
    if (model.size > 0 && rand() < 0.45) {
      const tags = [...model.keys()];
      const t = tags[Math.floor(rand() * tags.length)]!;
      arena.free(offsets.get(t)!);
      offsets.delete(t);
      model.delete(t);
    } else {
      const bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
      const off = arena.alloc(tag, bytes.length);
      arena.buf.set(bytes, off);
      offsets.set(tag, off);
      model.set(tag++, bytes);
    }
  }
  for (const [t, bytes] of model) {
    const off = offsets.get(t)!;
    assert.equal(arena.length(off), bytes.length);
    assert.equal(compareBytes(bytes, arena.buf, off, bytes.length), 0, `block ${t}`);
  }
  assert.ok(arena.buf.length <= Math.max(256, 4 * arena.liveBytes), `${arena.buf.length} bytes for ${arena.liveBytes} live`);
  assert.throws(() => { const off = arena.alloc(tag, 1); arena.free(off); arena.free(off); }, /freed twice/);
});

test('compareBytes orders as Buffer.compare', () => {
  const rand = rng(3);
  const pick = () => Buffer.from(Array.from({ length: Math.floor(rand() * 4) }, () => Math.floor(rand() * 3)));
  for (let i = 0; i < 2000; i++) {
    const a = pick();
    const b = pick();
    const pad = Buffer.concat([Buffer.from([9, 9]), b]);
    assert.equal(Math.sign(compareBytes(a, pad, 2, b.length)), Buffer.compare(a, b), `${a.toString('hex')} vs ${b.toString('hex')}`);
  }
});

test('key index: find, add and remove agree with a Map through growth and arena compaction', () => {
  const idx = new KeyIndex();
  const model = new Map<string, number>();
  const rand = rng(11);
  for (let step = 0; step < 30_000; step++) {
    const key = Buffer.from(`k${Math.floor(rand() * 3000)}`);
    const name = key.toString('latin1');
    const e = idx.find(key);
    assert.equal(e, model.get(name) ?? -1, name);
    if (e === -1) {
      const added = idx.add(key);
      assert.equal(idx.add(key), added);
      model.set(name, added);
    } else if (rand() < 0.6) {
      idx.remove(e);
      model.delete(name);
    }
    assert.equal(idx.size, model.size);
  }
  for (const [name, e] of model) assert.deepEqual(idx.keyOf(e), Buffer.from(name, 'latin1'));
  assert.equal(idx.find(Buffer.alloc(0)), -1);
});

test('watcher table: slots are found by (stream, watch id) through growth and reuse; lists keep insertion order', () => {
  const t = new WatcherTable();
  const model = new Map<string, number>();
  const rand = rng(5);
  for (let step = 0; step < 20_000; step++) {
    const stream = 1 + Math.floor(rand() * 20);
    // Watch ids as etcd allows them: any int64, here also above 2^32.
    const id = rand() < 0.2 ? 2 ** 40 + Math.floor(rand() * 50) : Math.floor(rand() * 400);
    const k = `${stream}/${id}`;
    const s = t.find(stream, id);
    assert.equal(s, model.get(k) ?? -1, k);
    if (s === -1) {
      const n = t.alloc(stream, id);
      t.flags[n] = 1;
      model.set(k, n);
    } else if (rand() < 0.5) {
      t.release(s);
      model.delete(k);
    }
  }
  assert.equal(t.count, model.size);

  const next = new Int32Array(8);
  const prev = new Int32Array(8);
  let head = -1;
  for (const s of [3, 1, 4, 5]) head = listAppend(next, prev, head, s);
  assert.deepEqual(listSlots(next, head), [3, 1, 4, 5]);
  head = listRemove(next, prev, head, 3);
  head = listRemove(next, prev, head, 4);
  head = listAppend(next, prev, head, 3);
  assert.deepEqual(listSlots(next, head), [1, 5, 3]);
  for (const s of [1, 5, 3]) head = listRemove(next, prev, head, s);
  assert.equal(head, -1);
  assert.deepEqual(listSlots(next, head), []);
});
