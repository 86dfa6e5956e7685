// The result ring's records read in place (readResultAt, what the main thread's
// result loops use) give what decodeResult gives for the same records, across
// the ring's wrap; other types and records too short for their type are left
// to decodeResult.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ring } from '../../src/workers/ring/ring.js';
import {
  ResultType, decodeResult, encodeApplied, encodeResultError, readResultAt, writeResultOk, writeWatchData, type InPlaceResults,
} from '../../src/workers/protocol/result-ring.js';

type Seen = { kind: 'answer'; reqId: number; body: Buffer } | { kind: 'applied'; index: number; synced: boolean }
  | { kind: 'watch'; streamId: number; watchId: number; body: Buffer } | { kind: 'other'; type: number };

test('Ok, Applied and WatchData read in place equal decodeResult; other records are left to it', () => {
  const ring = new Ring(Ring.allocate(4096));
  const seen: Seen[] = [];
  const expected: Seen[] = [];
  const to: InPlaceResults = {
    answer: (reqId, body) => seen.push({ kind: 'answer', reqId, body }),
    applied: (index, synced) => seen.push({ kind: 'applied', index, synced }),
    watchData: (streamId, watchId, body) => seen.push({ kind: 'watch', streamId, watchId, body }),
  };
  for (let round = 0; round < 50; round++) {
    const body = Buffer.alloc(37 + round * 7, round);
    const reqId = 2 ** 40 + round;
    writeResultOk(ring, reqId, body);
    assert.ok(ring.tryWrite(encodeApplied(1000 + round, 2000 + round, round % 2 === 0)));
    writeWatchData(ring, 3 + round, 5 + round, body);
    assert.ok(ring.tryWriteParts(encodeResultError(reqId, 9, 'no')));
    ring.drainInPlace((area, at, len) => {
      const view = area.subarray(at, at + len);
      const r = decodeResult(view);
      if (r.type === ResultType.Ok) expected.push({ kind: 'answer', reqId: r.reqId, body: r.body });
      else if (r.type === ResultType.Applied) expected.push({ kind: 'applied', index: r.index, synced: r.synced });
      else if (r.type === ResultType.WatchData) expected.push({ kind: 'watch', streamId: r.streamId, watchId: r.watchId, body: r.body });
      else expected.push({ kind: 'other', type: r.type });
      if (!readResultAt(area, at, len, to)) seen.push({ kind: 'other', type: area[at]! });
    });
  }
  assert.equal(seen.length, 200);
  assert.deepEqual(seen, expected);
});

test('a record too short for its type is not read in place', () => {
  const area = Buffer.alloc(64);
  const to: InPlaceResults = { answer: () => assert.fail('answer'), applied: () => assert.fail('applied'), watchData: () => assert.fail('watch') };
  area[0] = ResultType.Ok;
  assert.equal(readResultAt(area, 0, 8, to), false);
  area[0] = ResultType.Applied;
  assert.equal(readResultAt(area, 0, 17, to), false);
  area[0] = ResultType.WatchData;
  assert.equal(readResultAt(area, 0, 16, to), false);
});
