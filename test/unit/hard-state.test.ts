// The WAL's hard state keeps the vote as the exact 64-bit member id: a double
// (the old layout) rounds ids above 2^53, so after a restart the member would
// no longer recognise the candidate it voted for in its current term.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHardState, encodeHardState } from '../../src/storage/wal/recover.js';

test('a 64-bit vote survives the WAL hard state exactly', () => {
  const vote = 0xf606a12c5f6b0b37n; // above 2^53, as most random member ids are
  const hs = decodeHardState(encodeHardState({ term: 7, vote, commit: 1234 }));
  assert.deepEqual(hs, { term: 7, vote, commit: 1234 });
  assert.notEqual(BigInt(Number(vote)), vote, 'the id must be one a double cannot hold');
});

test('the old 24-byte layout (vote as a double) still reads', () => {
  const b = Buffer.alloc(24);
  b.writeDoubleLE(3, 0);
  b.writeDoubleLE(42, 8);
  b.writeDoubleLE(9, 16);
  assert.deepEqual(decodeHardState(b), { term: 3, vote: 42n, commit: 9 });
});

test('a hard state record of unknown layout is refused, not misread', () => {
  assert.throws(() => decodeHardState(Buffer.alloc(25)), /no known layout/);
  assert.throws(() => decodeHardState(Buffer.alloc(16)), /no known layout/);
});
