// The in-memory raft log counts the bytes of entry data it holds (the member cuts the
// log by bytes as well as by count), through every way entries come and go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RaftLog } from '../../src/raft/log.js';
import { EntryType, type Entry } from '../../src/raft/types.js';

const entry = (index: number, size: number, term = 1): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(size) });
const base = { index: 0, term: 0, conf: { voters: [1n], learners: [] } };
const sum = (log: RaftLog) => log.slice(log.firstIndex(), log.lastIndex()).reduce((n, e) => n + e.data.length, 0);

test('bytes follow push, truncate, compact and restore', () => {
  const log = new RaftLog(base, [entry(1, 10), entry(2, 20)]);
  assert.equal(log.bytes, 30);
  for (let i = 3; i <= 10; i++) log.push(entry(i, i * 100));
  assert.equal(log.bytes, sum(log));
  log.truncateFrom(8); // drops 8, 9, 10
  assert.equal(log.bytes, sum(log));
  assert.equal(log.bytes, 30 + 300 + 400 + 500 + 600 + 700);
  log.compactTo(4); // drops 1..4
  assert.equal(log.bytes, 500 + 600 + 700);
  assert.equal(log.bytes, sum(log));
  log.restore({ index: 50, term: 2, conf: base.conf });
  assert.equal(log.bytes, 0);
});

test('a log built from entries some of which are at or below its base counts only those above', () => {
  const log = new RaftLog({ ...base, index: 2, term: 1 }, [entry(3, 7), entry(4, 9)]);
  assert.equal(log.bytes, 16);
});

test('indexKeepingBytes: the highest cut that keeps at least that many bytes after it', () => {
  const log = new RaftLog(base, [1, 2, 3, 4, 5].map((i) => entry(i, 100)));
  assert.equal(log.indexKeepingBytes(250), 2, 'entries 3..5 hold 300 >= 250');
  assert.equal(log.indexKeepingBytes(300), 2);
  assert.equal(log.indexKeepingBytes(301), 1);
  assert.equal(log.indexKeepingBytes(1), 4);
  assert.equal(log.indexKeepingBytes(10_000), 0, 'fewer bytes than asked: nothing can go');
});
