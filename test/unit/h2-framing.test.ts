import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MessageReader, decodeGrpcMessage, encodeGrpcMessage, frameMessage, parseGrpcTimeout, type MessageSink,
} from '../../src/grpc/framing.js';
import { classifyPreface, H2_PREFACE } from '../../src/grpc/port-sharing.js';

function collect(): MessageSink & { msgs: Buffer[] } {
  const msgs: Buffer[] = [];
  return { msgs, onGrpcMessage: (m) => { msgs.push(Buffer.from(m)); } };
}

const bodies = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('x')];
const stream = Buffer.concat(bodies.map((b) => frameMessage(b)));

test('MessageReader: several messages in one chunk', () => {
  const r = new MessageReader(1 << 20);
  const sink = collect();
  assert.equal(r.push(stream, sink), null);
  assert.deepEqual(sink.msgs, bodies);
  assert.equal(r.partial, false);
});

test('MessageReader: messages split at every possible chunk size', () => {
  for (const size of [1, 2, 3, 4, 5, 6, 7, 13, 4096, 65_535]) {
    const r = new MessageReader(1 << 20);
    const sink = collect();
    for (let off = 0; off < stream.length; off += size) {
      assert.equal(r.push(stream.subarray(off, off + size), sink), null);
    }
    assert.deepEqual(sink.msgs, bodies, `chunk size ${size}`);
    assert.equal(r.partial, false);
  }
});

test('MessageReader: partial at the end is reported', () => {
  const r = new MessageReader(100);
  const sink = collect();
  r.push(Buffer.from([0, 0, 0]), sink);
  assert.equal(r.partial, true);
  const r2 = new MessageReader(100);
  r2.push(Buffer.from([0, 0, 0, 0, 10, 1, 2]), sink);
  assert.equal(r2.partial, true);
  assert.equal(sink.msgs.length, 0);
});

test('MessageReader: over the limit, compressed flag, bad flag', () => {
  const big = new MessageReader(10).push(frameMessage(Buffer.alloc(11)), collect());
  assert.equal(big?.code, 8);
  assert.equal(big?.message, 'grpc: received message larger than max (11 vs. 10)');
  const z = new MessageReader(10);
  z.encoding = 'gzip';
  const ze = z.push(Buffer.from([1, 0, 0, 0, 1, 0x41]), collect());
  assert.equal(ze?.code, 12);
  assert.equal(ze?.message, 'grpc: Decompressor is not installed for grpc-encoding "gzip"');
  const ie = new MessageReader(10).push(Buffer.from([1, 0, 0, 0, 1, 0x41]), collect());
  assert.equal(ie?.code, 13);
  const bad = new MessageReader(10).push(Buffer.from([9, 0, 0, 0, 0]), collect());
  assert.equal(bad?.code, 13);
});

test('grpc-message percent-encoding round trip', () => {
  assert.equal(encodeGrpcMessage('etcdserver: key not found'), 'etcdserver: key not found');
  assert.equal(encodeGrpcMessage('100% ok\n'), '100%25 ok%0A');
  assert.equal(encodeGrpcMessage('é'), '%C3%A9');
  for (const s of ['plain', '100% über\r\n\tdone', '日本語 %%', '']) assert.equal(decodeGrpcMessage(encodeGrpcMessage(s)), s);
});

test('grpc-timeout parsing', () => {
  assert.equal(parseGrpcTimeout(undefined), -1);
  assert.equal(parseGrpcTimeout('100m'), 100);
  assert.equal(parseGrpcTimeout('5S'), 5000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('4999000u'), 4999);
  assert.equal(parseGrpcTimeout('1000000n'), 1);
  assert.ok(Number.isNaN(parseGrpcTimeout('10x')));
  assert.ok(Number.isNaN(parseGrpcTimeout('m')));
  assert.ok(Number.isNaN(parseGrpcTimeout('123456789S')));
});

test('preface sniffing', () => {
  assert.equal(classifyPreface(H2_PREFACE), 'h2');
  assert.equal(classifyPreface(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0])])), 'h2');
  assert.equal(classifyPreface(H2_PREFACE.subarray(0, 10)), null);
  assert.equal(classifyPreface(Buffer.from('GET / HTTP/1.1\r\n')), 'h1');
  assert.equal(classifyPreface(Buffer.from('PRI * HTTP/1.1')), 'h1');
});
