// The reader of etcd 3.4's WAL (storage/wal/etcd-wal.ts) and of its raft
// entry data (proto/etcd-raft-request.ts), on files framed here exactly as
// etcd's wal/encoder.go frames them: padding bits in the length's top byte,
// the CRC-32C rolled over records and carried into the next file by its crc
// record. The real etcd's files are read in test/compat/binary-swap.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../../src/common/crc32c.js';
import { ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from '../../src/proto/wire.js';
import { EtcdWalError, EtcdWalRecord, readEtcdWal } from '../../src/storage/wal/etcd-wal.js';
import { decodeEtcdRaftRequest } from '../../src/proto/etcd-raft-request.js';

function msg(fields: [number, bigint | Buffer][]): Buffer {
  const w = new ProtoWriter(64);
  for (const [f, v] of fields) {
    if (typeof v === 'bigint') { w.writeTag(f, WIRE_VARINT); w.writeVarintBig(v); } else { w.writeTag(f, WIRE_LDELIM); w.writeBytes(v); }
  }
  return w.finish();
}

/** etcd's encoder: one WAL file's bytes from records, continuing the rolling crc `crc`. */
function walFile(records: { type: number; data: Buffer }[], crc: { v: number }, tail = Buffer.alloc(4096)): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    let recCrc = crc.v;
    if (r.type !== EtcdWalRecord.Crc) { crc.v = crc32c(r.data, crc.v); recCrc = crc.v; }
    const body = msg([[1, BigInt(r.type)], [2, BigInt(recCrc)], [3, r.data]]);
    const pad = (8 - (body.length % 8)) % 8;
    const frame = Buffer.alloc(8);
    frame.writeBigUInt64LE(BigInt(body.length) | (pad !== 0 ? BigInt(0x80 | pad) << 56n : 0n));
    parts.push(frame, body, Buffer.alloc(pad));
  }
  return Buffer.concat([...parts, tail]);
}

const entry = (index: number, term: number, data: Buffer, type = 0) => ({ type: EtcdWalRecord.Entry, data: msg([[1, BigInt(type)], [2, BigInt(term)], [3, BigInt(index)], [4, data]]) });
const state = (term: number, vote: bigint, commit: number) => ({ type: EtcdWalRecord.State, data: msg([[1, BigInt(term)], [2, vote], [3, BigInt(commit)]]) });
const put = (key: string) => msg([[4, msg([[1, Buffer.from(key)], [2, Buffer.from('v')]])]]);

test('etcd WAL: two files, the crc chain carried across, an overwritten suffix, a torn tail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-wal-'));
  try {
    const crc = { v: 0 };
    const meta = { type: EtcdWalRecord.Metadata, data: msg([[1, 0xcafe0000cafe0001n], [2, 0xbeefn]]) };
    writeFileSync(join(dir, '0000000000000000-0000000000000000.wal'), walFile([
      { type: EtcdWalRecord.Crc, data: Buffer.alloc(0) }, meta, { type: EtcdWalRecord.Snapshot, data: msg([]) },
      entry(1, 1, put('a')), entry(2, 1, put('b')), entry(3, 1, put('c')), state(1, 0xcafe0000cafe0001n, 2),
      entry(3, 2, put('c2')), // a new leader's entry replaces 3 and everything after
    ], crc));
    // The second file opens with a crc record carrying the chain so far (walFile writes crc.v into it).
    const torn = Buffer.from([0x30, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]); // a frame whose record never made it whole
    writeFileSync(join(dir, '0000000000000001-0000000000000004.wal'), walFile([
      { type: EtcdWalRecord.Crc, data: Buffer.alloc(0) }, meta, state(2, 0xcafe0000cafe0001n, 3), entry(4, 2, put('d')),
    ], crc, Buffer.concat([torn, Buffer.alloc(100)])));

    const w = readEtcdWal(dir);
    assert.equal(w.nodeId, 0xcafe0000cafe0001n);
    assert.equal(w.clusterId, 0xbeefn);
    assert.deepEqual(w.hardState, { term: 2, vote: 0xcafe0000cafe0001n, commit: 3 });
    assert.deepEqual(w.entries.map((e) => [e.index, e.term]), [[1, 1], [2, 1], [3, 2], [4, 2]]);
    assert.deepEqual(w.snapshots, [{ index: 0, term: 0 }]);
    assert.match(w.tornTail ?? '', /0000000000000001-0000000000000004\.wal/);
    const r = decodeEtcdRaftRequest(w.entries[2]!.data);
    assert.ok(r.kind === 'v3' && r.op === 'put' && r.request.includes(Buffer.from('c2')));

    // A flipped byte in a record of the first (not the last) file is corruption, not a torn tail.
    const bad = walFile([{ type: EtcdWalRecord.Crc, data: Buffer.alloc(0) }, meta, entry(1, 1, put('a'))], { v: 0 });
    bad[bad.indexOf(Buffer.from('a'), 40)] = 0x7a;
    writeFileSync(join(dir, '0000000000000000-0000000000000000.wal'), bad);
    assert.throws(() => readEtcdWal(dir), (e: unknown) => e instanceof EtcdWalError && /crc mismatch/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('etcd raft entry data: InternalRaftRequest with its user, the bare v2 Request etcd publishes attributes with', () => {
  const txn = msg([[100, msg([[1, 7n], [2, Buffer.from('alice')], [3, 5n]])], [6, msg([])]]);
  const t = decodeEtcdRaftRequest(txn);
  assert.deepEqual(t.kind === 'v3' ? [t.op, t.username, t.authRevision] : t.kind, ['txn', 'alice', 5]);
  const attrs = msg([[1, 9n], [2, Buffer.from('PUT')], [3, Buffer.from('/0/members/8e9e05c52164694d/attributes')], [4, Buffer.from('{"name":"n1"}')]]);
  assert.deepEqual(decodeEtcdRaftRequest(attrs), { kind: 'v2', request: { method: 'PUT', path: '/0/members/8e9e05c52164694d/attributes', val: '{"name":"n1"}' } });
  const wrapped = msg([[1, 9n], [2, msg([[2, Buffer.from('PUT')], [3, Buffer.from('/0/version')], [4, Buffer.from('3.4.0')]])]]);
  assert.deepEqual(decodeEtcdRaftRequest(wrapped), { kind: 'v2', request: { method: 'PUT', path: '/0/version', val: '3.4.0' } });
  assert.deepEqual(decodeEtcdRaftRequest(msg([[1100, msg([[1, Buffer.from('bob')]])]])), { kind: 'auth', field: 1100 });
  assert.deepEqual(decodeEtcdRaftRequest(Buffer.alloc(0)), { kind: 'empty' });
});
