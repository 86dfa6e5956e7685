import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, TransportFrameError, frame, sealFrame, FRAME_HEADER_BYTES } from '../../src/transport/frames.js';
import { SendQueue } from '../../src/transport/send-queue.js';
import { decodeAck, decodeHello, encodeAck, encodeHello, HandshakeStatus } from '../../src/transport/handshake.js';
import { TransportDecodeError } from '../../src/transport/message-codec.js';
import { MessageType, type Message } from '../../src/raft/types.js';

const payloads = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('x'), Buffer.alloc(3, 1)];
const stream = Buffer.concat(payloads.map((p) => frame(p)));

function readAll(chunks: Buffer[], max?: number): Buffer[] {
  const out: Buffer[] = [];
  const r = new FrameReader((p) => out.push(Buffer.from(p)), max);
  for (const c of chunks) r.push(c);
  assert.equal(r.buffered, 0);
  return out;
}

test('frames: whole stream, and split at every chunk size', () => {
  assert.deepEqual(readAll([stream]), payloads);
  for (const size of [1, 2, 3, 7, 8, 9, 13, 4096, 65_535, 70_000]) {
    const chunks: Buffer[] = [];
    for (let off = 0; off < stream.length; off += size) chunks.push(stream.subarray(off, off + size));
    assert.deepEqual(readAll(chunks), payloads, `chunk size ${size}`);
  }
});

test('frames: sealFrame in place matches frame()', () => {
  const buf = Buffer.alloc(FRAME_HEADER_BYTES + 5);
  buf.write('hello', FRAME_HEADER_BYTES);
  assert.equal(sealFrame(buf, 0, 5), buf.length);
  assert.ok(buf.equals(frame(Buffer.from('hello'))));
  assert.throws(() => sealFrame(buf, 0, 6), RangeError);
});

test('frames: a bad checksum is a TransportFrameError', () => {
  const f = frame(Buffer.from('payload'));
  f[FRAME_HEADER_BYTES + 2] ^= 1;
  assert.throws(() => readAll([f]), (e: unknown) => e instanceof TransportFrameError && e.reason === 'checksum');
});

test('frames: over the limit is refused from the header alone', () => {
  const r = new FrameReader(() => assert.fail('no frame expected'), 100);
  const hdr = Buffer.alloc(8);
  hdr.writeUInt32LE(101, 0);
  r.push(hdr.subarray(0, 3));
  assert.throws(() => r.push(hdr.subarray(3)), (e: unknown) => e instanceof TransportFrameError && e.reason === 'too-large');
  assert.deepEqual(readAll([frame(Buffer.alloc(100))], 100), [Buffer.alloc(100)]);
});

function msg(type: MessageType, i: number): Message {
  return { type, from: 1n, to: 2n, term: 1, logTerm: 0, index: i, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

test('send queue: FIFO within the byte bound, oldest non-snapshot dropped first', () => {
  const q = new SendQueue(100);
  assert.equal(q.push(msg(MessageType.MsgApp, 1), 30), 0);
  assert.equal(q.push(msg(MessageType.MsgSnap, 2), 30), 0);
  assert.equal(q.push(msg(MessageType.MsgApp, 3), 30), 0);
  assert.equal(q.bytes, 90);
  // Needs 30 more: drops #1 (the oldest non-snapshot), keeps the MsgSnap.
  assert.equal(q.push(msg(MessageType.MsgApp, 4), 30), 1);
  // Needs 60: drops #3 and #4.
  assert.equal(q.push(msg(MessageType.MsgApp, 5), 60), 2);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, 90);
  // Too big to fit beside the snapshot even after dropping everything else: dropped itself.
  assert.equal(q.push(msg(MessageType.MsgApp, 6), 80), 2);
  assert.equal(q.length, 1);
  // A snapshot message is never dropped, even over the bound.
  assert.equal(q.push(msg(MessageType.MsgSnap, 7), 90), 0);
  assert.deepEqual([q.shift()!.index, q.shift()!.index], [2, 7]);
  assert.equal(q.shift(), undefined);
  assert.equal(q.bytes, 0);
  assert.equal(q.peekSize(), -1);
});

test('send queue: long runs stay ordered and bounded, every message accounted for', () => {
  const q = new SendQueue(1000);
  let next = 0;
  let dropped = 0;
  let shifted = 0;
  let expect = 0;
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < 150; i++) dropped += q.push(msg(round % 7 === 0 && i === 0 ? MessageType.MsgSnap : MessageType.MsgApp, next++), 10);
    assert.ok(q.bytes <= 1000);
    for (let i = 0; i < 40 && q.length > 0; i++) {
      const m = q.shift()!;
      assert.ok(m.index >= expect);
      expect = m.index + 1;
      shifted++;
    }
  }
  assert.equal(dropped + shifted + q.length, next);
  assert.equal(q.bytes, q.length * 10);
});

test('handshake: hello and ack round trip; wrong sizes rejected', () => {
  const h = { version: 1, clusterId: 0xcdb3c3a4f1d25a2en, fromId: 0xffffffffffffffffn, toId: 3n };
  assert.deepEqual(decodeHello(encodeHello(h)), h);
  const a = { version: 1, status: HandshakeStatus.ClusterIdMismatch, clusterId: 5n, memberId: 6n };
  assert.deepEqual(decodeAck(encodeAck(a)), a);
  assert.throws(() => decodeHello(Buffer.alloc(3)), TransportDecodeError);
  assert.throws(() => decodeAck(encodeHello(h)), TransportDecodeError);
});
