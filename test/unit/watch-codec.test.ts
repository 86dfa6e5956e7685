import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messageType } from '../../src/proto/registry.js';
import { decodeWatchRequest, decodeWatchResponse, encodeEvent, encodeWatchResponse, withPrevKv } from '../../src/proto/watch-codec.js';

const Req = messageType('etcdserverpb.WatchRequest');
const Res = messageType('etcdserverpb.WatchResponse');
const enc = (o: Record<string, unknown>) => Buffer.from(Req.encode(Req.fromObject(o)).finish());

test('decodes every WatchRequest kind as protobufjs encodes it', () => {
  assert.deepEqual(decodeWatchRequest(enc({ progressRequest: {} })), { kind: 'progress' });
  assert.deepEqual(decodeWatchRequest(enc({ cancelRequest: { watchId: 7 } })), { kind: 'cancel', watchId: 7 });
  assert.deepEqual(decodeWatchRequest(Buffer.alloc(0)), { kind: 'none' });
  const c = decodeWatchRequest(enc({ createRequest: {
    key: Buffer.from('a'), rangeEnd: Buffer.from('b'), startRevision: 5, progressNotify: true, filters: [0, 1], prevKv: true, watchId: 3, fragment: true,
  } }));
  assert.equal(c.kind, 'create');
  if (c.kind !== 'create') return;
  assert.deepEqual({ ...c.create, key: c.create.key.toString(), rangeEnd: c.create.rangeEnd.toString() }, {
    key: 'a', rangeEnd: 'b', startRevision: 5, progressNotify: true, filters: [0, 1], prevKv: true, watchId: 3, fragment: true,
  });
  // A progress request followed by another field still decodes (the length must be read before moving on).
  assert.deepEqual(decodeWatchRequest(Buffer.concat([enc({ progressRequest: {} }), Buffer.from([0x38, 0x01])])), { kind: 'progress' });
});

test('WatchResponse with watch_id -1, flags and events reads back in protobufjs and in our decoder', () => {
  const kv = { key: Buffer.from('k'), createRevision: 2, modRevision: 3, version: 2, value: Buffer.from('v'), lease: 0n };
  const prev = { ...kv, modRevision: 2, version: 1, value: Buffer.from('u') };
  const ev = withPrevKv(encodeEvent(0, kv), prev);
  const body = encodeWatchResponse({
    header: { clusterId: 1n, memberId: 2n, revision: 3, raftTerm: 2 }, watchId: -1, canceled: true, compactRevision: 9, cancelReason: 'why', events: [ev],
  });
  const o = Res.toObject(Res.decode(body), { longs: String, bytes: String }) as Record<string, unknown>;
  assert.equal(o.watchId, '-1');
  assert.equal(o.canceled, true);
  assert.equal(o.compactRevision, '9');
  assert.equal(o.cancelReason, 'why');
  const ours = decodeWatchResponse(body);
  assert.equal(ours.watchId, -1);
  assert.equal(ours.header.revision, 3);
  assert.equal(ours.events[0]!.kv.value.toString(), 'v');
});
