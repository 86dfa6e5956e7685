// kv-codec against protobufjs (the oracle, loaded from our .proto files):
// byte-equal encodings, round trips both ways, unknown fields, malformed input.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { messageType } from '../../src/proto/registry.js';
import * as C from '../../src/proto/kv-codec.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter, varintSize, varintSizeBig } from '../../src/proto/wire.js';
import type {
  Compare, CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, KeyValue,
  PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp,
  TxnRequest, TxnResponse,
} from '../../src/proto/kv-types.js';

// ---------------------------------------------------------------- oracle bridge

const BIGINT_FIELDS = new Set(['lease', 'clusterId', 'memberId']);
const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
type Obj = Record<string, unknown>;

function isDefault(v: unknown): boolean {
  return v === 0 || v === 0n || v === false || v === '' || (Buffer.isBuffer(v) && v.length === 0);
}

// protobufjs types util.Long loosely; it is the 'long' package's class.
const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): unknown };

function scalarToPb(field: protobuf.Field, v: unknown): unknown {
  if (typeof v !== 'bigint') return v;
  const unsigned = field.type === 'uint64';
  return Long.fromString(unsigned ? BigInt.asUintN(64, v).toString() : v.toString(), unsigned);
}

function opFieldName(prefix: 'request' | 'response', kind: string): string {
  return prefix + kind[0]!.toUpperCase() + kind.slice(1);
}

/** Our plain object -> protobufjs plain object, proto3 defaults left out. */
function toPb(type: protobuf.Type, obj: Obj): Obj {
  const out: Obj = {};
  const fn = type.fullName;
  if (fn === '.etcdserverpb.RequestOp' || fn === '.etcdserverpb.ResponseOp') {
    const kind = obj['kind'] as string;
    if (kind === 'none') return out;
    const name = opFieldName(fn.endsWith('RequestOp') ? 'request' : 'response', kind);
    const field = type.fields[name];
    assert.ok(field, `${fn} has no field ${name}`);
    out[name] = toPb(field.resolvedType as protobuf.Type, obj[kind] as Obj);
    return out;
  }
  for (const key of Object.keys(obj)) {
    if (key !== 'targetUnion') assert.ok(type.fields[key], `${fn} has no field ${key}`);
  }
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (field.partOf !== null) {
      if (obj['targetUnion'] === field.name) out[field.name] = scalarToPb(field, v);
      continue;
    }
    if (v === undefined || v === null) continue;
    const rt = field.resolvedType;
    if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length !== 0) {
        out[field.name] = arr.map((x) => (rt instanceof protobuf.Type ? toPb(rt, x as Obj) : scalarToPb(field, x)));
      }
    } else if (rt instanceof protobuf.Type) {
      out[field.name] = toPb(rt, v as Obj);
    } else if (!isDefault(v)) {
      out[field.name] = scalarToPb(field, v);
    }
  }
  return out;
}

function scalarFromPb(field: protobuf.Field, v: unknown): unknown {
  if (field.type === 'bytes') return Buffer.from((v ?? []) as Uint8Array);
  if (INT64_TYPES.has(field.type)) {
    const s = String(v ?? 0);
    return BIGINT_FIELDS.has(field.name) ? BigInt(s) : Number(s);
  }
  if (field.type === 'bool') return v === true;
  return v ?? 0;
}

const EMPTY_HEADER: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };

/** protobufjs decoded message -> our plain object shape. */
function fromPb(type: protobuf.Type, msg: Obj): Obj {
  const fn = type.fullName;
  if (fn === '.etcdserverpb.RequestOp' || fn === '.etcdserverpb.ResponseOp') {
    const which = msg[type.oneofsArray[0]!.name] as string | undefined;
    if (which === undefined) return { kind: 'none' };
    const prefix = fn.endsWith('RequestOp') ? 'request' : 'response';
    const kind = which.slice(prefix.length, prefix.length + 1).toLowerCase() + which.slice(prefix.length + 1);
    return { kind, [kind]: fromPb(type.fields[which]!.resolvedType as protobuf.Type, msg[which] as Obj) };
  }
  const out: Obj = {};
  for (const field of type.fieldsArray) {
    const v = msg[field.name];
    const rt = field.resolvedType;
    if (field.repeated) {
      out[field.name] = ((v ?? []) as unknown[]).map((x) =>
        rt instanceof protobuf.Type ? fromPb(rt, x as Obj) : scalarFromPb(field, x));
    } else if (rt instanceof protobuf.Type) {
      out[field.name] = v == null ? (field.name === 'header' ? { ...EMPTY_HEADER } : null) : fromPb(rt, v as Obj);
    } else {
      out[field.name] = scalarFromPb(field, v);
    }
  }
  if (fn === '.etcdserverpb.Compare') out['targetUnion'] = (msg['targetUnion'] as string | undefined) ?? null;
  return out;
}

interface Codec<T> {
  type: string;
  encode(m: T): Buffer;
  decode(b: Buffer): T;
}

/** A codec of some message type (the table below mixes them). */
interface AnyCodec {
  type: string;
  encode(m: never): Buffer;
  decode(b: Buffer): unknown;
}

function pbEncode(type: protobuf.Type, obj: Obj): Buffer {
  const err = type.verify(obj);
  assert.equal(err, null, `${type.fullName}: ${err}`);
  return Buffer.from(type.encode(obj).finish());
}

/** The four checks every sample goes through. */
function checkAll<T>(codec: Codec<T> | AnyCodec, sample: T, label: string): void {
  const type = messageType(codec.type);
  const ours = (codec.encode as (m: T) => Buffer)(sample);
  const theirs = pbEncode(type, toPb(type, sample as Obj));
  assert.equal(ours.toString('hex'), theirs.toString('hex'), `${label}: bytes differ from protobufjs`);
  assert.deepStrictEqual(codec.decode(ours), sample, `${label}: our round trip`);
  assert.deepStrictEqual(codec.decode(theirs), sample, `${label}: protobufjs -> ours`);
  assert.deepStrictEqual(fromPb(type, type.decode(ours) as unknown as Obj), sample as unknown,
    `${label}: ours -> protobufjs`);
}

// ---------------------------------------------------------------- sample builders

const B = (s: string): Buffer => Buffer.from(s);
const MAX = Number.MAX_SAFE_INTEGER;

function header(p: Partial<ResponseHeader> = {}): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0, ...p };
}
function kv(p: Partial<KeyValue> = {}): KeyValue {
  return { key: Buffer.alloc(0), createRevision: 0, modRevision: 0, version: 0, value: Buffer.alloc(0), lease: 0n, ...p };
}
function rangeReq(p: Partial<RangeRequest> = {}): RangeRequest {
  return {
    key: Buffer.alloc(0), rangeEnd: Buffer.alloc(0), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0,
    serializable: false, keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0,
    minCreateRevision: 0, maxCreateRevision: 0, ...p,
  };
}
function putReq(p: Partial<PutRequest> = {}): PutRequest {
  return { key: Buffer.alloc(0), value: Buffer.alloc(0), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...p };
}
function delReq(p: Partial<DeleteRangeRequest> = {}): DeleteRangeRequest {
  return { key: Buffer.alloc(0), rangeEnd: Buffer.alloc(0), prevKv: false, ...p };
}
function cmp(p: Partial<Compare> = {}): Compare {
  return {
    result: 0, target: 0, key: Buffer.alloc(0), version: 0, createRevision: 0, modRevision: 0,
    value: Buffer.alloc(0), lease: 0n, targetUnion: null, rangeEnd: Buffer.alloc(0), ...p,
  };
}

const LEASES = [0n, 1n, -1n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 0x694d7f2b3c5e1a07n,
  2n ** 63n - 1n, -(2n ** 63n), -123456789012345n];
const REVS = [0, 1, 127, 128, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 35, 2 ** 49, MAX - 1, MAX];

const HEADERS: ResponseHeader[] = [
  header(),
  header({ clusterId: 0xcdb3c3a4f1d25a2en, memberId: 0x8e9e05c52164694dn, revision: 12345, raftTerm: 7 }),
  header({ clusterId: 2n ** 64n - 1n, memberId: 1n, revision: MAX, raftTerm: MAX }),
  header({ clusterId: 2n ** 63n, memberId: 2n ** 53n + 1n, revision: 1, raftTerm: 1 }),
];

const KVS: KeyValue[] = [
  kv(),
  kv({ key: B('foo'), value: B('bar'), createRevision: 2, modRevision: 3, version: 1 }),
  kv({ key: B('k'), value: Buffer.alloc(0), createRevision: MAX, modRevision: MAX, version: MAX, lease: -1n }),
  kv({ key: Buffer.alloc(300, 7), value: Buffer.alloc(70000, 9), createRevision: 1, modRevision: 2 ** 40, version: 3,
    lease: 0x694d7f2b3c5e1a07n }),
  ...LEASES.map((lease, i) => kv({ key: B(`lease-${i}`), lease, version: i })),
  ...REVS.map((rev) => kv({ key: B('r'), createRevision: rev, modRevision: rev, version: rev })),
];

const RANGE_REQS: RangeRequest[] = [
  rangeReq(),
  rangeReq({ key: B('a'), rangeEnd: B('\0') }),
  rangeReq({ key: B('/registry/pods/'), rangeEnd: B('/registry/pods0'), limit: 500, revision: 1000, sortOrder: 2,
    sortTarget: 4, serializable: true, keysOnly: true, countOnly: true, minModRevision: 1, maxModRevision: MAX,
    minCreateRevision: 2 ** 32, maxCreateRevision: 2 ** 53 - 2 }),
  rangeReq({ key: B('x'), revision: -1, limit: -5 }),
  rangeReq({ key: B('x'), revision: -MAX }),
  rangeReq({ key: Buffer.from([0, 255, 128]), sortOrder: 1, sortTarget: 1 }),
];

const PUT_REQS: PutRequest[] = [
  putReq(),
  putReq({ key: B('k'), value: B('v') }),
  putReq({ key: Buffer.alloc(16, 1), value: Buffer.alloc(256, 2), lease: 0x694d7f2b3c5e1a07n, prevKv: true,
    ignoreValue: true, ignoreLease: true }),
  ...LEASES.map((lease) => putReq({ key: B('l'), lease })),
  putReq({ key: B('k'), value: Buffer.alloc(0), prevKv: true }),
];

const DEL_REQS: DeleteRangeRequest[] = [
  delReq(), delReq({ key: B('a') }), delReq({ key: B('a'), rangeEnd: B('b'), prevKv: true }),
];

const COMPARES: Compare[] = [
  cmp(),
  cmp({ key: B('k'), targetUnion: 'version', version: 0 }),
  cmp({ result: 1, target: 0, key: B('k'), targetUnion: 'version', version: 5 }),
  cmp({ result: 2, target: 1, key: B('k'), targetUnion: 'createRevision', createRevision: MAX }),
  cmp({ result: 3, target: 2, key: B('k'), targetUnion: 'modRevision', modRevision: 0 }),
  cmp({ result: 0, target: 2, key: B('k'), targetUnion: 'modRevision', modRevision: 2 ** 33 }),
  cmp({ result: 0, target: 3, key: B('k'), targetUnion: 'value', value: Buffer.alloc(0) }),
  cmp({ result: 3, target: 3, key: B('k'), targetUnion: 'value', value: B('hello'), rangeEnd: B('l') }),
  cmp({ result: 0, target: 4, key: B('k'), targetUnion: 'lease', lease: 0n }),
  cmp({ result: 1, target: 4, key: B('k'), targetUnion: 'lease', lease: -(2n ** 63n) }),
  cmp({ result: 0, target: 4, key: B('k'), targetUnion: 'lease', lease: 0x694d7f2b3c5e1a07n, rangeEnd: B('\0') }),
];

function txnReq(depth: number): TxnRequest {
  const success: RequestOp[] = [
    { kind: 'put', put: putReq({ key: B(`s${depth}`), value: B('v'), lease: 7n }) },
    { kind: 'range', range: rangeReq({ key: B('r'), limit: 1 }) },
    { kind: 'deleteRange', deleteRange: delReq({ key: B('d'), prevKv: true }) },
    { kind: 'none' },
    { kind: 'range', range: rangeReq() },
  ];
  if (depth > 1) success.push({ kind: 'txn', txn: txnReq(depth - 1) });
  return {
    compare: COMPARES.slice(0, 3 + depth),
    success,
    failure: depth > 1 ? [{ kind: 'txn', txn: txnReq(depth - 1) }] : [{ kind: 'put', put: putReq() }],
  };
}

const TXN_REQS: TxnRequest[] = [
  { compare: [], success: [], failure: [] },
  { compare: COMPARES, success: [], failure: [] },
  { compare: [COMPARES[2]!], success: [{ kind: 'put', put: PUT_REQS[2]! }], failure: [{ kind: 'range', range: RANGE_REQS[2]! }] },
  txnReq(1),
  txnReq(3),
  { compare: [], success: [{ kind: 'txn', txn: { compare: [], success: [], failure: [] } }], failure: [] },
];

const RANGE_RESPS: RangeResponse[] = [
  { header: header(), kvs: [], more: false, count: 0 },
  ...HEADERS.map((h) => ({ header: h, kvs: KVS, more: true, count: KVS.length })),
  { header: HEADERS[1]!, kvs: [KVS[1]!], more: false, count: MAX },
  { header: HEADERS[1]!, kvs: Array.from({ length: 1000 }, (_, i) => kv({ key: B(`key-${i}`), value: Buffer.alloc(i % 300, i),
    createRevision: i + 1, modRevision: i * 1000 + 1, version: (i % 5) + 1, lease: BigInt(i) * 0x10000000001n })),
    more: false, count: 1000 },
];

const PUT_RESPS: PutResponse[] = [
  { header: header(), prevKv: null },
  ...HEADERS.map((h) => ({ header: h, prevKv: null })),
  ...KVS.slice(0, 5).map((k) => ({ header: HEADERS[1]!, prevKv: k })),
];

const DEL_RESPS: DeleteRangeResponse[] = [
  { header: header(), deleted: 0, prevKvs: [] },
  { header: HEADERS[1]!, deleted: 3, prevKvs: KVS.slice(0, 3) },
  { header: HEADERS[2]!, deleted: MAX, prevKvs: [] },
];

function txnResp(depth: number): TxnResponse {
  const responses: ResponseOp[] = [
    { kind: 'put', put: PUT_RESPS[2]! },
    { kind: 'range', range: RANGE_RESPS[5]! },
    { kind: 'deleteRange', deleteRange: DEL_RESPS[1]! },
  ];
  if (depth > 1) responses.push({ kind: 'txn', txn: txnResp(depth - 1) });
  return { header: HEADERS[depth % HEADERS.length]!, succeeded: depth % 2 === 1, responses };
}

const TXN_RESPS: TxnResponse[] = [
  { header: header(), succeeded: false, responses: [] },
  txnResp(1),
  txnResp(3),
];

const CODECS = {
  header: { type: 'etcdserverpb.ResponseHeader', encode: C.encodeResponseHeader, decode: C.decodeResponseHeader },
  kv: { type: 'mvccpb.KeyValue', encode: C.encodeKeyValue, decode: C.decodeKeyValue },
  rangeReq: { type: 'etcdserverpb.RangeRequest', encode: C.encodeRangeRequest, decode: C.decodeRangeRequest },
  rangeResp: { type: 'etcdserverpb.RangeResponse', encode: C.encodeRangeResponse, decode: C.decodeRangeResponse },
  putReq: { type: 'etcdserverpb.PutRequest', encode: C.encodePutRequest, decode: C.decodePutRequest },
  putResp: { type: 'etcdserverpb.PutResponse', encode: C.encodePutResponse, decode: C.decodePutResponse },
  delReq: { type: 'etcdserverpb.DeleteRangeRequest', encode: C.encodeDeleteRangeRequest, decode: C.decodeDeleteRangeRequest },
  delResp: { type: 'etcdserverpb.DeleteRangeResponse', encode: C.encodeDeleteRangeResponse, decode: C.decodeDeleteRangeResponse },
  txnReq: { type: 'etcdserverpb.TxnRequest', encode: C.encodeTxnRequest, decode: C.decodeTxnRequest },
  txnResp: { type: 'etcdserverpb.TxnResponse', encode: C.encodeTxnResponse, decode: C.decodeTxnResponse },
  compactReq: { type: 'etcdserverpb.CompactionRequest', encode: C.encodeCompactionRequest, decode: C.decodeCompactionRequest },
  compactResp: { type: 'etcdserverpb.CompactionResponse', encode: C.encodeCompactionResponse, decode: C.decodeCompactionResponse },
} satisfies Record<string, AnyCodec>;

const COMPACT_REQS: CompactionRequest[] = [
  { revision: 0, physical: false }, { revision: 1, physical: true }, { revision: MAX, physical: false },
];
const COMPACT_RESPS: CompactionResponse[] = HEADERS.map((h) => ({ header: h }));

const ALL: [AnyCodec, unknown[]][] = [
  [CODECS.header, HEADERS], [CODECS.kv, KVS], [CODECS.rangeReq, RANGE_REQS], [CODECS.rangeResp, RANGE_RESPS],
  [CODECS.putReq, PUT_REQS], [CODECS.putResp, PUT_RESPS], [CODECS.delReq, DEL_REQS], [CODECS.delResp, DEL_RESPS],
  [CODECS.txnReq, TXN_REQS], [CODECS.txnResp, TXN_RESPS], [CODECS.compactReq, COMPACT_REQS],
  [CODECS.compactResp, COMPACT_RESPS],
];

// ---------------------------------------------------------------- tests

describe('kv-codec vs protobufjs', () => {
  for (const [codec, samples] of ALL) {
    test(`${codec.type}: byte-equal and round trips (${samples.length} samples)`, () => {
      samples.forEach((s, i) => checkAll(codec, s, `${codec.type}[${i}]`));
    });
  }

  test('each Compare target through a TxnRequest', () => {
    for (const c of COMPARES) {
      checkAll(CODECS.txnReq as Codec<TxnRequest>, { compare: [c], success: [], failure: [] }, `compare ${c.targetUnion}`);
    }
  });

  test('encodePutResponseBytes and encodeHeaderOnlyResponse match the object encoders', () => {
    for (const r of PUT_RESPS) assert.deepEqual(C.encodePutResponseBytes(r.header, r.prevKv), C.encodePutResponse(r));
    const T = messageType('etcdserverpb.LeaseRevokeResponse');
    for (const h of HEADERS) {
      const theirs = pbEncode(T, { header: toPb(messageType('etcdserverpb.ResponseHeader'), h as unknown as Obj) });
      assert.deepEqual(C.encodeHeaderOnlyResponse(h), theirs);
    }
  });

  test('RangeResponse with 10k kvs', () => {
    const kvs = Array.from({ length: 10000 }, (_, i) => kv({ key: B(`/k/${i}`), value: Buffer.alloc(64, i),
      createRevision: i + 1, modRevision: i + 1, version: 1 }));
    const m: RangeResponse = { header: HEADERS[1]!, kvs, more: true, count: 20000 };
    checkAll(CODECS.rangeResp as Codec<RangeResponse>, m, 'range 10k');
    // After a large response, a small one still encodes right (scratch reuse).
    checkAll(CODECS.rangeResp as Codec<RangeResponse>, RANGE_RESPS[5]!, 'range after 10k');
  });
});

describe('decoding semantics', () => {
  const UNKNOWN_FIELDS = (() => {
    const w = new ProtoWriter(64);
    w.writeTag(99, 0); w.writeVarint(123456789);
    w.writeTag(100, 1); w.writeFixed64Big(0xdeadbeefn);
    w.writeTag(101, 2); w.writeBytes(B('unknown'));
    w.writeTag(102, 5); w.writeFixed32(42);
    w.writeTag(15, 0); w.writeVarintBig(-1n);
    return Buffer.from(w.finish());
  })();

  test('unknown fields are skipped at top level', () => {
    for (const [codec, samples] of ALL) {
      for (const s of samples.slice(0, 4)) {
        const bytes = (codec.encode as (m: unknown) => Buffer)(s);
        const withUnknown = Buffer.concat([UNKNOWN_FIELDS, bytes, UNKNOWN_FIELDS]);
        assert.deepStrictEqual(codec.decode(withUnknown), s, codec.type);
      }
    }
  });

  test('unknown fields inside nested messages are skipped', () => {
    const put = putReq({ key: B('k'), value: B('v'), lease: 9n });
    const putBytes = Buffer.concat([UNKNOWN_FIELDS, C.encodePutRequest(put), UNKNOWN_FIELDS]);
    const c = COMPARES[3]!;
    const cmpBytes = Buffer.concat([C.encodeTxnRequest({ compare: [c], success: [], failure: [] }).subarray(2), UNKNOWN_FIELDS]);
    const w = new ProtoWriter(16);
    w.writeTag(1, 2); w.writeBytes(cmpBytes);
    const opBytes = (() => {
      const o = new ProtoWriter(16);
      o.writeTag(2, 2); o.writeBytes(putBytes);
      o.writeRaw(UNKNOWN_FIELDS);
      return o.finish();
    })();
    w.writeTag(2, 2); w.writeBytes(opBytes);
    const got = C.decodeTxnRequest(w.finish());
    assert.deepStrictEqual(got, { compare: [c], success: [{ kind: 'put', put }], failure: [] });

    const kvBytes = Buffer.concat([C.encodeKeyValue(KVS[1]!), UNKNOWN_FIELDS]);
    const r = new ProtoWriter(16);
    r.writeRaw(C.encodeRangeResponse({ header: HEADERS[1]!, kvs: [], more: false, count: 0 }));
    r.writeTag(2, 2); r.writeBytes(kvBytes);
    assert.deepStrictEqual(C.decodeRangeResponse(r.finish()).kvs, [KVS[1]]);
  });

  test('absent fields decode as proto3 defaults', () => {
    assert.deepStrictEqual(C.decodeRangeRequest(Buffer.alloc(0)), rangeReq());
    assert.deepStrictEqual(C.decodePutRequest(Buffer.alloc(0)), putReq());
    assert.deepStrictEqual(C.decodePutResponse(Buffer.alloc(0)), { header: header(), prevKv: null });
    assert.deepStrictEqual(C.decodeTxnRequest(new Uint8Array(0)), { compare: [], success: [], failure: [] });
  });

  test('last value wins for a repeated scalar field; messages concatenate', () => {
    const a = C.encodePutRequest(putReq({ key: B('a'), value: B('1'), lease: 5n, prevKv: true }));
    const b = C.encodePutRequest(putReq({ key: B('b'), lease: 6n }));
    assert.deepStrictEqual(C.decodePutRequest(Buffer.concat([a, b])),
      putReq({ key: B('b'), value: B('1'), lease: 6n, prevKv: true }));
  });

  test('last Compare oneof member wins and clears the others', () => {
    const w = new ProtoWriter(16);
    w.writeTag(3, 2); w.writeBytes(B('k'));
    w.writeTag(4, 0); w.writeVarint(9);
    w.writeTag(7, 2); w.writeBytes(B('val'));
    const inner = w.finish();
    const t = new ProtoWriter(16);
    t.writeTag(1, 2); t.writeBytes(inner);
    assert.deepStrictEqual(C.decodeTxnRequest(t.finish()).compare[0],
      cmp({ key: B('k'), targetUnion: 'value', value: B('val') }));
  });

  test('decoded bytes are views of the input, not copies', () => {
    const bytes = C.encodePutRequest(putReq({ key: B('key'), value: B('value') }));
    const m = C.decodePutRequest(bytes);
    assert.equal(m.key.buffer, bytes.buffer);
    assert.equal(m.value.buffer, bytes.buffer);
  });

  test('accepts a plain Uint8Array and a Buffer slice', () => {
    const bytes = C.encodePutRequest(PUT_REQS[2]!);
    assert.deepStrictEqual(C.decodePutRequest(new Uint8Array(bytes)), PUT_REQS[2]);
    const padded = Buffer.concat([Buffer.from([1, 2, 3]), bytes]).subarray(3);
    assert.deepStrictEqual(C.decodePutRequest(padded), PUT_REQS[2]);
  });

  test('txn nesting beyond MAX_TXN_DEPTH is rejected', () => {
    let t: TxnRequest = { compare: [], success: [], failure: [] };
    for (let i = 1; i < C.MAX_TXN_DEPTH; i++) t = { compare: [], success: [{ kind: 'txn', txn: t }], failure: [] };
    assert.deepStrictEqual(C.decodeTxnRequest(C.encodeTxnRequest(t)), t);
    const deeper = { compare: [], success: [{ kind: 'txn' as const, txn: t }], failure: [] };
    assert.throws(() => C.decodeTxnRequest(C.encodeTxnRequest(deeper)), ProtoDecodeError);
  });
});

describe('malformed input throws ProtoDecodeError', () => {
  const cases: [string, number[]][] = [
    ['truncated varint', [0x18, 0x80]],
    ['truncated varint in bigint field', [0x18, 0xff, 0xff]],
    ['varint longer than 10 bytes', [0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['truncated tag', [0x80]],
    ['length past end', [0x0a, 0x05, 0x61]],
    ['huge length', [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ['wire type 3 (start group)', [0x0b]],
    ['wire type 4 (end group)', [0x0c]],
    ['unknown field with wire type 3', [0x9b, 0x06]],
    ['wire type 6', [0x0e]],
    ['wire type 7', [0x0f]],
    ['field number 0', [0x00, 0x01]],
    ['truncated fixed64', [0xa1, 0x06, 1, 2, 3]],
    ['truncated fixed32', [0xad, 0x06, 1, 2]],
  ];
  const decoders = [C.decodePutRequest, C.decodeRangeRequest, C.decodeTxnRequest, C.decodeDeleteRangeRequest,
    C.decodeCompactionRequest, C.decodeRangeResponse, C.decodeTxnResponse];
  for (const [name, bytes] of cases) {
    test(name, () => {
      for (const dec of decoders) assert.throws(() => dec(Buffer.from(bytes)), ProtoDecodeError, `${dec.name}`);
    });
  }

  test('int64 beyond 2^53 saturates (etcd compares it, never rejects it)', () => {
    const w = new ProtoWriter(16);
    w.writeTag(4, 0); w.writeVarintBig(2n ** 60n);
    assert.equal(C.decodeRangeRequest(w.finish()).revision, Number.MAX_SAFE_INTEGER);
    const n = new ProtoWriter(16);
    n.writeTag(3, 0); n.writeVarintBig(-(2n ** 60n));
    assert.equal(C.decodeRangeRequest(n.finish()).limit, -Number.MAX_SAFE_INTEGER);
  });

  test('embedded message whose field runs past its own length', () => {
    // TxnRequest.compare with len 2, whose key claims 3 bytes (inside the outer buffer).
    assert.throws(() => C.decodeTxnRequest(Buffer.from([0x0a, 0x02, 0x1a, 0x03, 0x61, 0x62, 0x63])), ProtoDecodeError);
    assert.throws(() => C.decodeRangeResponse(Buffer.from([0x12, 0x01, 0x10, 0x05])), ProtoDecodeError);
  });

  test('every truncation and byte flip either decodes or throws ProtoDecodeError', () => {
    const bufs: [(b: Buffer) => unknown, Buffer][] = [
      [C.decodeTxnRequest, C.encodeTxnRequest(txnReq(3))],
      [C.decodeTxnResponse, C.encodeTxnResponse(txnResp(2))],
      [C.decodePutRequest, C.encodePutRequest(PUT_REQS[2]!)],
      [C.decodeRangeRequest, C.encodeRangeRequest(RANGE_REQS[2]!)],
    ];
    let seed = 0x9e3779b9;
    const rand = (): number => {
      seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
      return (seed >>> 0) / 4294967296;
    };
    for (const [dec, full] of bufs) {
      const lim = Math.min(full.length, 2000);
      for (let i = 0; i < lim; i++) {
        try { dec(full.subarray(0, i)); } catch (e) { assert.ok(e instanceof ProtoDecodeError, String(e)); }
      }
      for (let k = 0; k < 500; k++) {
        const b = Buffer.from(full);
        for (let j = 0; j < 3; j++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        try { dec(b); } catch (e) { assert.ok(e instanceof ProtoDecodeError, String(e)); }
      }
    }
  });
});

describe('wire primitives vs protobufjs Writer/Reader', () => {
  const NUMS = [0, 1, 127, 128, 255, 300, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, 2 ** 31,
    2 ** 32 - 1, 2 ** 32, 2 ** 35, 2 ** 42, 2 ** 49, 2 ** 52 + 3, MAX - 1, MAX, -1, -2, -(2 ** 31), -(2 ** 32), -MAX];

  test('readInt64 saturates outside the safe range (a Range limit of MaxInt64 is no limit)', () => {
    for (const [v, want] of [
      [(1n << 63n) - 1n, Number.MAX_SAFE_INTEGER],
      [1n << 53n, Number.MAX_SAFE_INTEGER],
      [-(1n << 63n), -Number.MAX_SAFE_INTEGER],
      [-(1n << 60n), -Number.MAX_SAFE_INTEGER],
    ] as const) {
      const w = new ProtoWriter(1);
      w.writeVarintBig(v);
      assert.equal(new ProtoReader(w.finish()).readInt64(), want);
    }
  });

  test('writeVarint (number) matches int64 encoding, sizes agree, readInt64 inverts', () => {
    for (const n of NUMS) {
      const w = new ProtoWriter(1);
      w.writeVarint(n);
      const ours = w.finish();
      const theirs = Buffer.from(protobuf.Writer.create().int64(n).finish());
      assert.deepEqual(ours, theirs, String(n));
      assert.equal(varintSize(n), ours.length, `size ${n}`);
      assert.equal(new ProtoReader(ours).readInt64(), n);
      if (n >= 0) assert.equal(new ProtoReader(ours).readVarint(), n);
      else assert.throws(() => new ProtoReader(ours).readVarint(), ProtoDecodeError);
    }
  });

  test('writeVarintBig matches int64/uint64 encoding, readers invert', () => {
    const BIGS = [...LEASES, 2n ** 64n - 1n, 2n ** 56n, 2n ** 56n - 1n, 2n ** 49n, 0xffffffffn, 0x100000000n];
    for (const v of BIGS) {
      const w = new ProtoWriter(1);
      w.writeVarintBig(v);
      const ours = w.finish();
      const u = BigInt.asUintN(64, v);
      const theirs = Buffer.from(protobuf.Writer.create().uint64(u.toString()).finish());
      assert.deepEqual(ours, theirs, String(v));
      assert.equal(varintSizeBig(v), ours.length, `size ${v}`);
      assert.equal(new ProtoReader(ours).readVarintBig(), u);
      assert.equal(new ProtoReader(ours).readInt64Big(), BigInt.asIntN(64, v));
    }
  });

  test('int32/enum negatives sign-extend to 10 bytes', () => {
    const w = new ProtoWriter(1);
    w.writeInt32(-3);
    assert.deepEqual(w.finish(), Buffer.from(protobuf.Writer.create().int32(-3).finish()));
    assert.equal(new ProtoReader(w.finish()).readInt32(), -3);
  });

  test('fork/ldelim and growth', () => {
    const w = new ProtoWriter(2);
    w.writeTag(1, 2);
    const mark = w.fork();
    w.writeRaw(Buffer.alloc(200, 1));
    w.ldelim(mark);
    w.writeTag(2, 2);
    const m2 = w.fork();
    w.writeString('héllo');
    w.ldelim(m2);
    const r = new ProtoReader(w.finish());
    assert.equal(r.readTag(), 0x0a);
    assert.deepEqual(r.readBytes(), Buffer.alloc(200, 1));
    assert.equal(r.readTag(), 0x12);
    const inner = r.readBytes();
    assert.equal(new ProtoReader(inner).readString(), 'héllo');
    assert.equal(r.pos, r.end);
  });

  test('readBytes returns a view; skipField rejects truncation', () => {
    const buf = Buffer.from([0x03, 0x61, 0x62, 0x63]);
    const got = new ProtoReader(buf).readBytes();
    assert.equal(got.buffer, buf.buffer);
    assert.equal(got.toString(), 'abc');
    assert.throws(() => new ProtoReader(Buffer.from([0x05, 1])).skipField(2), ProtoDecodeError);
    assert.throws(() => new ProtoReader(Buffer.from([1, 2, 3])).skipField(1), ProtoDecodeError);
    assert.throws(() => new ProtoReader(Buffer.from([0x80, 0x80])).skipField(0), ProtoDecodeError);
    assert.throws(() => new ProtoReader(Buffer.from([])).skipField(3), ProtoDecodeError);
    assert.throws(() => new ProtoReader(Buffer.from([])).skipField(4), ProtoDecodeError);
  });
});

test('a range_end present on the wire but empty means "to the end" (etcd reads it as a non-nil empty slice)', async () => {
  const { decodeRangeRequest, decodeDeleteRangeRequest } = await import('../../src/proto/kv-codec.js');
  const present = Buffer.from('0a01611200', 'hex'); // key "a", range_end present with length 0
  assert.deepEqual([...decodeRangeRequest(present).rangeEnd], [0]);
  assert.deepEqual([...decodeDeleteRangeRequest(present).rangeEnd], [0]);
  assert.equal(decodeRangeRequest(Buffer.from('0a0161', 'hex')).rangeEnd.length, 0); // absent: single key
});

test('scanPutRequest reads what decodePutRequest reads (last field wins, unknown fields skipped) and rejects what it rejects', () => {
  const cases: Buffer[] = [
    C.encodePutRequest({ key: Buffer.from('k'), value: Buffer.alloc(300, 1), lease: 0n, prevKv: true, ignoreValue: false, ignoreLease: false }),
    C.encodePutRequest({ key: Buffer.alloc(0), value: Buffer.alloc(0), lease: 7n, prevKv: false, ignoreValue: true, ignoreLease: true }),
    C.encodePutRequest({ key: Buffer.from('key'), value: Buffer.from('v'), lease: -1n, prevKv: false, ignoreValue: true, ignoreLease: false }),
    // key twice (the last wins), an unknown varint field 9 and an unknown bytes field 10, lease then lease 0.
    Buffer.from([0x0a, 0x01, 0x61, 0x0a, 0x00, 0x48, 0x05, 0x52, 0x02, 0x01, 0x02, 0x18, 0x05, 0x18, 0x00, 0x30, 0x01]),
  ];
  for (const b of cases) {
    const d = C.decodePutRequest(b);
    const f = C.scanPutRequest(b);
    assert.deepEqual({ ...f }, {
      keyLength: d.key.length, valueLength: d.value.length, leased: d.lease !== 0n, ignoreValue: d.ignoreValue, ignoreLease: d.ignoreLease,
    }, b.toString('hex'));
  }
  for (const bad of [Buffer.from([0x0a, 0x05, 0x61]), Buffer.from([0x18, 0xff]), Buffer.from([0x0b]), Buffer.from([0x12, 0x80])]) {
    assert.throws(() => C.decodePutRequest(bad), ProtoDecodeError, bad.toString('hex'));
    assert.throws(() => C.scanPutRequest(bad), ProtoDecodeError, bad.toString('hex'));
  }
});
