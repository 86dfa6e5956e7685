import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeRng } from '../../src/raft/rng.js';
import { MessageType, type Entry, type Message, type ReadCtx } from '../../src/raft/types.js';
import {
  decodeMessage, encodeMessage, encodeMessageInto, messageSize, TransportDecodeError,
} from '../../src/transport/message-codec.js';

type Rng = () => number;
const MAX_U64 = (1n << 64n) - 1n;

function int(r: Rng, n: number): number {
  return Math.floor(r() * n);
}

function randNum(r: Rng): number {
  switch (int(r, 5)) {
    case 0: return 0;
    case 1: return Number.MAX_SAFE_INTEGER;
    case 2: return int(r, 1000);
    case 3: return int(r, 2 ** 32) + 2 ** 32 * int(r, 2 ** 21);
    default: return int(r, 2 ** 32);
  }
}

function randId(r: Rng): bigint {
  switch (int(r, 4)) {
    case 0: return 0n;
    case 1: return MAX_U64;
    case 2: return BigInt(1 + int(r, 10));
    default: return (BigInt(int(r, 2 ** 32)) << 32n) | BigInt(int(r, 2 ** 32));
  }
}

function randBytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  // Fill in 4-byte strides: cheap for 1.5 MiB and still not constant.
  let x = int(r, 2 ** 32);
  for (let i = 0; i < n; i++) {
    if ((i & 3) === 0) x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = (x >>> ((i & 3) * 8)) & 0xff;
  }
  return b;
}

function randEntry(r: Rng, large: boolean): Entry {
  const sizes = [0, 1, 7, 100, 4096];
  const size = large ? 1.5 * 1024 * 1024 - int(r, 3) : sizes[int(r, sizes.length)]!;
  const e: Entry = { index: randNum(r), term: randNum(r), data: randBytes(r, size) };
  const t = int(r, 3);
  if (t === 1) e.type = 0;
  else if (t === 2) e.type = 1;
  return e;
}

function randCtx(r: Rng): ReadCtx {
  switch (int(r, 4)) {
    case 0: return randId(r);
    case 1: return int(r, 1e9);
    case 2: return -r() * 1e6;
    default: return Number.NaN;
  }
}

function randMessage(r: Rng, opts: { large?: boolean } = {}): Message {
  const nEntries = int(r, 4) === 0 ? int(r, 20) : 0;
  const entries: Entry[] = [];
  for (let i = 0; i < nEntries; i++) entries.push(randEntry(r, false));
  if (opts.large) entries.push(randEntry(r, true));
  const m: Message = {
    type: int(r, MessageType.MsgPreVoteResp + 1) as MessageType,
    from: randId(r), to: randId(r), term: randNum(r), logTerm: randNum(r), index: randNum(r),
    entries, commit: randNum(r), reject: r() < 0.5, rejectHint: randNum(r),
  };
  if (r() < 0.3) m.context = randCtx(r);
  if (r() < 0.2) m.transfer = r() < 0.5;
  if (r() < 0.2) {
    const ids = (n: number) => Array.from({ length: n }, () => randId(r));
    m.snapshot = { index: randNum(r), term: randNum(r), conf: { voters: ids(int(r, 6)), learners: ids(int(r, 3)) } };
  }
  return m;
}

test('codec: seeded random round trips, exact', () => {
  const r = makeRng(20240601);
  for (let i = 0; i < 5000; i++) {
    const m = randMessage(r);
    const buf = encodeMessage(m);
    assert.equal(buf.length, messageSize(m));
    assert.deepStrictEqual(decodeMessage(buf), m, `message ${i}`);
  }
});

test('codec: a heartbeat is 62 bytes, an append of one 4 KiB entry adds 21 + 4096', () => {
  const hb: Message = { type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 3, logTerm: 0, index: 0, entries: [], commit: 9, reject: false, rejectHint: 0 };
  assert.equal(messageSize(hb), 62);
  const app = { ...hb, type: MessageType.MsgApp, entries: [{ index: 10, term: 3, data: new Uint8Array(4096) }] };
  assert.equal(messageSize(app), 62 + 21 + 4096);
});

test('codec: empty and 1.5 MiB entries round trip, data copied out of the input', () => {
  const r = makeRng(7);
  for (let i = 0; i < 4; i++) {
    const m = randMessage(r, { large: true });
    m.entries.unshift({ index: 1, term: 1, data: new Uint8Array(0) });
    const buf = encodeMessage(m);
    const d = decodeMessage(buf);
    assert.deepStrictEqual(d, m);
    // Overwriting the input must not change what was decoded (no views by default).
    const before = Buffer.from(d.entries.at(-1)!.data);
    buf.fill(0xee);
    assert.ok(before.equals(d.entries.at(-1)!.data));
  }
});

test('codec: views option shares the input; encodeMessageInto writes at an offset', () => {
  const r = makeRng(99);
  const m = randMessage(r);
  m.entries = [{ index: 5, term: 2, data: Buffer.from('hello') }, { index: 6, term: 2, data: new Uint8Array(0), type: 1 }];
  const size = messageSize(m);
  const big = new Uint8Array(size + 13);
  assert.equal(encodeMessageInto(m, big, 5), 5 + size);
  const slice = big.subarray(5, 5 + size);
  const d = decodeMessage(slice, { views: true });
  assert.equal(d.entries[0]!.data.buffer, big.buffer);
  assert.equal(Buffer.from(d.entries[0]!.data).toString(), 'hello');
  assert.equal(d.entries[1]!.type, 1);
  assert.equal('type' in d.entries[0]!, false);
});

function assertDecodeError(buf: Uint8Array, what: string): void {
  assert.throws(() => decodeMessage(buf), (err: unknown) => err instanceof TransportDecodeError, what);
}

test('codec: every truncation is a TransportDecodeError', () => {
  const r = makeRng(3);
  for (let i = 0; i < 200; i++) {
    const buf = encodeMessage(randMessage(r));
    // Every cut through the headers, then random cuts through entry data.
    const cuts = Array.from({ length: Math.min(buf.length, 200) }, (_, n) => n);
    for (let k = 0; k < 30 && buf.length > 200; k++) cuts.push(200 + int(r, buf.length - 200));
    for (const n of cuts) assertDecodeError(buf.subarray(0, n), `message ${i} cut at ${n}/${buf.length}`);
  }
  const big = encodeMessage(randMessage(r, { large: true }));
  for (const n of [0, 10, 61, 62, 100, big.length - 1_000_000, big.length - 1]) assertDecodeError(big.subarray(0, n), `large cut at ${n}`);
});

test('codec: trailing bytes are rejected', () => {
  const r = makeRng(4);
  for (let i = 0; i < 100; i++) {
    const buf = encodeMessage(randMessage(r));
    assertDecodeError(Buffer.concat([buf, Buffer.from([0])]), 'one trailing byte');
  }
});

test('codec: corrupted inputs decode or throw TransportDecodeError, nothing else', () => {
  const r = makeRng(5);
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    const buf = encodeMessage(randMessage(r));
    const flips = 1 + int(r, 4);
    for (let k = 0; k < flips; k++) buf[int(r, buf.length)] = int(r, 256);
    try {
      const m = decodeMessage(buf);
      // Whatever decodes is a valid message: it encodes again to the same bytes.
      assert.ok(encodeMessage(m).equals(buf) || Number.isNaN(m.context as number));
    } catch (err) {
      if (!(err instanceof TransportDecodeError)) throw err;
      rejected++;
    }
  }
  assert.ok(rejected > 100, `only ${rejected} corruptions were detected`);
});

test('codec: specific malformed fields', () => {
  const base: Message = { type: MessageType.MsgApp, from: 1n, to: 2n, term: 1, logTerm: 1, index: 1, entries: [{ index: 2, term: 1, data: Buffer.from('x') }], commit: 1, reject: false, rejectHint: 0 };
  const good = encodeMessage(base);
  const bad = (patch: (b: Buffer) => void, what: string) => {
    const b = Buffer.from(good);
    patch(b);
    assertDecodeError(b, what);
  };
  bad((b) => { b[0] = 18; }, 'unknown type');
  bad((b) => { b[1] = 64; }, 'unknown flag');
  bad((b) => { b[1] = 4; }, 'transfer value without flag');
  bad((b) => { b[1] = 16; }, 'bigint ctx without ctx flag');
  bad((b) => { b.writeUInt32LE(0x200000, 22); }, 'term hi word beyond 2^53');
  bad((b) => { b.writeUInt32LE(0xffffffff, 58); }, 'huge entry count');
  bad((b) => { b.writeUInt32LE(2, 58); }, 'entry count one too many');
  bad((b) => { b[62 + 16] = 2; }, 'unknown entry type');
  bad((b) => { b.writeUInt32LE(0xffffffff, 62 + 17); }, 'entry length beyond input');
  bad((b) => { b[1] = 32; }, 'snapshot flag without snapshot bytes');
  assertDecodeError(new Uint8Array(0), 'empty');
});

test('codec: unrepresentable messages are a RangeError at encode time', () => {
  const base: Message = { type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
  const enc = (m: Message) => () => encodeMessage(m);
  assert.throws(enc({ ...base, term: -1 }), RangeError);
  assert.throws(enc({ ...base, index: 1.5 }), RangeError);
  assert.throws(enc({ ...base, commit: 2 ** 53 }), RangeError);
  assert.throws(enc({ ...base, from: -1n }), RangeError);
  assert.throws(enc({ ...base, to: 1n << 64n }), RangeError);
  assert.throws(enc({ ...base, context: -5n }), RangeError);
  assert.throws(enc({ ...base, type: 200 as MessageType }), RangeError);
  assert.throws(enc({ ...base, type: 30 as MessageType }), RangeError); // between raft's types and the application range
  // 64..127 carry the application's own messages (e.g. lease renewals to the leader).
  assert.equal(decodeMessage(encodeMessage({ ...base, type: 64 as MessageType, context: 7n })).type, 64);
  assert.throws(enc({ ...base, entries: [{ index: 1, term: 1, data: new Uint8Array(1), type: 7 as 0 }] }), RangeError);
});
