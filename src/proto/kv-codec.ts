// Hand-written codecs for the KV service messages (etcdserverpb + mvccpb),
// on the server's hot path. Encoding is two-pass: size the message, allocate
// once, write with the put* primitives (writeX(buf, pos, m) returns the new
// position, so other encoders can embed these messages); the byte output is proto3 canonical (default-valued scalars
// omitted, fields in number order, oneof members written whenever set), the
// same bytes etcd and protobufjs produce. Decoding reads fields in place:
// bytes fields are views into the input buffer (no copy), so the caller must
// not reuse that buffer while the decoded message is alive.

import type {
  Compare,
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from './kv-types.js';
import {
  EMPTY_BUFFER,
  ProtoDecodeError,
  ProtoReader,
  putBytes,
  putInt32,
  putRaw,
  putVarint,
  putVarint32,
  putVarintBig,
  varintSize,
  varintSizeBig,
} from './wire.js';

/**
 * Deepest txn nesting accepted (a txn inside a txn's RequestOp counts one).
 * Bounds recursion on hostile input; etcd's own limits on ops per txn make
 * real nesting far shallower.
 */
/**
 * etcd (gogoproto) decodes a range_end that is on the wire but empty as a
 * non-nil empty slice, which its index reads as "to the end of the keyspace",
 * exactly like "\0". An absent range_end stays empty (a single key).
 */
const FROM_KEY_END: Buffer = Buffer.from([0]);
function presentRangeEnd(b: Buffer): Buffer {
  return b.length === 0 ? FROM_KEY_END : b;
}

export const MAX_TXN_DEPTH = 32;

// Tags (field << 3 | wire type). All KV fields are < 16 except Compare.range_end.
const T1_VARINT = 0x08;
const T1_LDELIM = 0x0a;
const T2_VARINT = 0x10;
const T2_LDELIM = 0x12;
const T3_VARINT = 0x18;
const T3_LDELIM = 0x1a;
const T4_VARINT = 0x20;
const T4_LDELIM = 0x22;
const T5_VARINT = 0x28;
const T5_LDELIM = 0x2a;
const T6_VARINT = 0x30;
const T7_VARINT = 0x38;
const T7_LDELIM = 0x3a;
const T8_VARINT = 0x40;
const T9_VARINT = 0x48;
const T10_VARINT = 0x50;
const T11_VARINT = 0x58;
const T12_VARINT = 0x60;
const T13_VARINT = 0x68;
const T64_LDELIM = 0x202; // Compare.range_end = 64, encoded as 0x82 0x04

function bytesFieldSize(b: Uint8Array): number {
  const n = b.length;
  return n === 0 ? 0 : 1 + varintSize(n) + n;
}

function embeddedSize(n: number): number {
  return 1 + varintSize(n) + n;
}

function checkEnd(r: ProtoReader, end: number): void {
  if (r.pos !== end) throw new ProtoDecodeError('field runs past end of embedded message');
}

function embeddedEnd(r: ProtoReader): number {
  const len = r.readLength();
  return r.pos + len;
}

function finishExact(buf: Buffer, pos: number, size: number): Buffer {
  if (pos !== size) throw new Error(`kv-codec: wrote ${pos} bytes, sized ${size}`);
  return buf;
}

// ================================================================ ResponseHeader

// cluster_id and member_id are fixed for a member; their encoding (bigint
// varints, the slow part) is cached and copied in as raw bytes.
let idCacheCluster = -1n;
let idCacheMember = -1n;
let idCacheBytes: Buffer = EMPTY_BUFFER;

function headerIdBytes(h: ResponseHeader): Buffer {
  if (h.clusterId === idCacheCluster && h.memberId === idCacheMember) return idCacheBytes;
  const buf = Buffer.allocUnsafe(22);
  let pos = 0;
  if (h.clusterId !== 0n) {
    buf[pos++] = T1_VARINT;
    pos = putVarintBig(buf, pos, BigInt.asUintN(64, h.clusterId));
  }
  if (h.memberId !== 0n) {
    buf[pos++] = T2_VARINT;
    pos = putVarintBig(buf, pos, BigInt.asUintN(64, h.memberId));
  }
  idCacheBytes = Buffer.from(buf.subarray(0, pos));
  idCacheCluster = h.clusterId;
  idCacheMember = h.memberId;
  return idCacheBytes;
}

export function sizeResponseHeader(h: ResponseHeader): number {
  let s = headerIdBytes(h).length;
  if (h.revision !== 0) s += 1 + varintSize(h.revision);
  if (h.raftTerm !== 0) s += 1 + varintSize(h.raftTerm);
  return s;
}

export function writeResponseHeader(buf: Buffer, pos: number, h: ResponseHeader): number {
  pos = putRaw(buf, pos, headerIdBytes(h));
  if (h.revision !== 0) {
    buf[pos++] = T3_VARINT;
    pos = putVarint(buf, pos, h.revision);
  }
  if (h.raftTerm !== 0) {
    buf[pos++] = T4_VARINT;
    pos = putVarint(buf, pos, h.raftTerm);
  }
  return pos;
}

/** Writes `header = 1` (always present, as etcd always sets it). */
function writeHeaderField(buf: Buffer, pos: number, h: ResponseHeader, hs: number): number {
  buf[pos++] = T1_LDELIM;
  pos = putVarint32(buf, pos, hs);
  pos = writeResponseHeader(buf, pos, h);
  return pos;
}

export function encodeResponseHeader(h: ResponseHeader): Buffer {
  const size = sizeResponseHeader(h);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeResponseHeader(buf, pos, h);
  return finishExact(buf, pos, size);
}

function readResponseHeader(r: ProtoReader, end: number): ResponseHeader {
  let clusterId = 0n;
  let memberId = 0n;
  let revision = 0;
  let raftTerm = 0;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_VARINT: clusterId = r.readVarintBig(); break;
      case T2_VARINT: memberId = r.readVarintBig(); break;
      case T3_VARINT: revision = r.readInt64(); break;
      case T4_VARINT: raftTerm = r.readVarint(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { clusterId, memberId, revision, raftTerm };
}

function emptyHeader(): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };
}

export function decodeResponseHeader(buf: Uint8Array): ResponseHeader {
  const r = new ProtoReader(buf);
  return readResponseHeader(r, r.end);
}

// ================================================================ KeyValue

export function sizeKeyValue(kv: KeyValue): number {
  let s = bytesFieldSize(kv.key) + bytesFieldSize(kv.value);
  if (kv.createRevision !== 0) s += 1 + varintSize(kv.createRevision);
  if (kv.modRevision !== 0) s += 1 + varintSize(kv.modRevision);
  if (kv.version !== 0) s += 1 + varintSize(kv.version);
  if (kv.lease !== 0n) s += 1 + varintSizeBig(kv.lease);
  return s;
}

export function writeKeyValue(buf: Buffer, pos: number, kv: KeyValue): number {
  if (kv.key.length !== 0) {
    buf[pos++] = T1_LDELIM;
    pos = putBytes(buf, pos, kv.key);
  }
  if (kv.createRevision !== 0) {
    buf[pos++] = T2_VARINT;
    pos = putVarint(buf, pos, kv.createRevision);
  }
  if (kv.modRevision !== 0) {
    buf[pos++] = T3_VARINT;
    pos = putVarint(buf, pos, kv.modRevision);
  }
  if (kv.version !== 0) {
    buf[pos++] = T4_VARINT;
    pos = putVarint(buf, pos, kv.version);
  }
  if (kv.value.length !== 0) {
    buf[pos++] = T5_LDELIM;
    pos = putBytes(buf, pos, kv.value);
  }
  if (kv.lease !== 0n) {
    buf[pos++] = T6_VARINT;
    pos = putVarintBig(buf, pos, kv.lease);
  }
  return pos;
}

/** Writes a KeyValue as embedded field `tag` (length-delimited). */
function writeKeyValueField(buf: Buffer, pos: number, tag: number, kv: KeyValue, size: number): number {
  pos = putVarint32(buf, pos, tag);
  pos = putVarint32(buf, pos, size);
  pos = writeKeyValue(buf, pos, kv);
  return pos;
}

export function encodeKeyValue(kv: KeyValue): Buffer {
  const size = sizeKeyValue(kv);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeKeyValue(buf, pos, kv);
  return finishExact(buf, pos, size);
}

function readKeyValue(r: ProtoReader, end: number): KeyValue {
  let key = EMPTY_BUFFER;
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  let value = EMPTY_BUFFER;
  let lease = 0n;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: key = r.readBytes(); break;
      case T2_VARINT: createRevision = r.readInt64(); break;
      case T3_VARINT: modRevision = r.readInt64(); break;
      case T4_VARINT: version = r.readInt64(); break;
      case T5_LDELIM: value = r.readBytes(); break;
      case T6_VARINT: lease = r.readInt64Big(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { key, createRevision, modRevision, version, value, lease };
}

export function decodeKeyValue(buf: Uint8Array): KeyValue {
  const r = new ProtoReader(buf);
  return readKeyValue(r, r.end);
}

// ================================================================ RangeRequest

export function sizeRangeRequest(m: RangeRequest): number {
  let s = bytesFieldSize(m.key) + bytesFieldSize(m.rangeEnd);
  if (m.limit !== 0) s += 1 + varintSize(m.limit);
  if (m.revision !== 0) s += 1 + varintSize(m.revision);
  if (m.sortOrder !== 0) s += 1 + (m.sortOrder < 0 ? 10 : varintSize(m.sortOrder));
  if (m.sortTarget !== 0) s += 1 + (m.sortTarget < 0 ? 10 : varintSize(m.sortTarget));
  if (m.serializable) s += 2;
  if (m.keysOnly) s += 2;
  if (m.countOnly) s += 2;
  if (m.minModRevision !== 0) s += 1 + varintSize(m.minModRevision);
  if (m.maxModRevision !== 0) s += 1 + varintSize(m.maxModRevision);
  if (m.minCreateRevision !== 0) s += 1 + varintSize(m.minCreateRevision);
  if (m.maxCreateRevision !== 0) s += 1 + varintSize(m.maxCreateRevision);
  return s;
}

export function writeRangeRequest(buf: Buffer, pos: number, m: RangeRequest): number {
  if (m.key.length !== 0) { buf[pos++] = T1_LDELIM; pos = putBytes(buf, pos, m.key); }
  if (m.rangeEnd.length !== 0) { buf[pos++] = T2_LDELIM; pos = putBytes(buf, pos, m.rangeEnd); }
  if (m.limit !== 0) { buf[pos++] = T3_VARINT; pos = putVarint(buf, pos, m.limit); }
  if (m.revision !== 0) { buf[pos++] = T4_VARINT; pos = putVarint(buf, pos, m.revision); }
  if (m.sortOrder !== 0) { buf[pos++] = T5_VARINT; pos = putInt32(buf, pos, m.sortOrder); }
  if (m.sortTarget !== 0) { buf[pos++] = T6_VARINT; pos = putInt32(buf, pos, m.sortTarget); }
  if (m.serializable) { buf[pos++] = T7_VARINT; buf[pos++] = 1; }
  if (m.keysOnly) { buf[pos++] = T8_VARINT; buf[pos++] = 1; }
  if (m.countOnly) { buf[pos++] = T9_VARINT; buf[pos++] = 1; }
  if (m.minModRevision !== 0) { buf[pos++] = T10_VARINT; pos = putVarint(buf, pos, m.minModRevision); }
  if (m.maxModRevision !== 0) { buf[pos++] = T11_VARINT; pos = putVarint(buf, pos, m.maxModRevision); }
  if (m.minCreateRevision !== 0) { buf[pos++] = T12_VARINT; pos = putVarint(buf, pos, m.minCreateRevision); }
  if (m.maxCreateRevision !== 0) { buf[pos++] = T13_VARINT; pos = putVarint(buf, pos, m.maxCreateRevision); }
  return pos;
}

function readRangeRequest(r: ProtoReader, end: number): RangeRequest {
  let key = EMPTY_BUFFER;
  let rangeEnd = EMPTY_BUFFER;
  let limit = 0;
  let revision = 0;
  let sortOrder = 0;
  let sortTarget = 0;
  let serializable = false;
  let keysOnly = false;
  let countOnly = false;
  let minModRevision = 0;
  let maxModRevision = 0;
  let minCreateRevision = 0;
  let maxCreateRevision = 0;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: key = r.readBytes(); break;
      case T2_LDELIM: rangeEnd = presentRangeEnd(r.readBytes()); break;
      case T3_VARINT: limit = r.readInt64(); break;
      case T4_VARINT: revision = r.readInt64(); break;
      case T5_VARINT: sortOrder = r.readInt32(); break;
      case T6_VARINT: sortTarget = r.readInt32(); break;
      case T7_VARINT: serializable = r.readBool(); break;
      case T8_VARINT: keysOnly = r.readBool(); break;
      case T9_VARINT: countOnly = r.readBool(); break;
      case T10_VARINT: minModRevision = r.readInt64(); break;
      case T11_VARINT: maxModRevision = r.readInt64(); break;
      case T12_VARINT: minCreateRevision = r.readInt64(); break;
      case T13_VARINT: maxCreateRevision = r.readInt64(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return {
    key, rangeEnd, limit, revision, sortOrder, sortTarget, serializable, keysOnly, countOnly,
    minModRevision, maxModRevision, minCreateRevision, maxCreateRevision,
  };
}

export function decodeRangeRequest(buf: Uint8Array): RangeRequest {
  const r = new ProtoReader(buf);
  return readRangeRequest(r, r.end);
}

export function encodeRangeRequest(m: RangeRequest): Buffer {
  const size = sizeRangeRequest(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeRangeRequest(buf, pos, m);
  return finishExact(buf, pos, size);
}

// ================================================================ RangeResponse

export function sizeRangeResponse(m: RangeResponse): number {
  let s = embeddedSize(sizeResponseHeader(m.header));
  const kvs = m.kvs;
  for (let i = 0; i < kvs.length; i++) s += embeddedSize(sizeKeyValue(kvs[i]!));
  if (m.more) s += 2;
  if (m.count !== 0) s += 1 + varintSize(m.count);
  return s;
}

function writeRangeResponseTail(buf: Buffer, pos: number, m: RangeResponse): number {
  if (m.more) { buf[pos++] = T3_VARINT; buf[pos++] = 1; }
  if (m.count !== 0) { buf[pos++] = T4_VARINT; pos = putVarint(buf, pos, m.count); }
  return pos;
}

export function writeRangeResponse(buf: Buffer, pos: number, m: RangeResponse): number {
  pos = writeHeaderField(buf, pos, m.header, sizeResponseHeader(m.header));
  const kvs = m.kvs;
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i]!;
    pos = writeKeyValueField(buf, pos, T2_LDELIM, kv, sizeKeyValue(kv));
  }
  pos = writeRangeResponseTail(buf, pos, m);
  return pos;
}

// Per-kv sizes of the RangeResponse being encoded, so each KeyValue is sized
// once. Grows to the largest response seen; encoding is synchronous, so one
// module-level scratch is safe.
let kvSizeScratch = new Int32Array(1024);

export function encodeRangeResponse(m: RangeResponse): Buffer {
  const kvs = m.kvs;
  const n = kvs.length;
  if (kvSizeScratch.length < n) kvSizeScratch = new Int32Array(Math.max(n, kvSizeScratch.length * 2));
  const sizes = kvSizeScratch;
  const hs = sizeResponseHeader(m.header);
  let size = embeddedSize(hs);
  for (let i = 0; i < n; i++) {
    const s = sizeKeyValue(kvs[i]!);
    sizes[i] = s;
    size += embeddedSize(s);
  }
  if (m.more) size += 2;
  if (m.count !== 0) size += 1 + varintSize(m.count);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeHeaderField(buf, pos, m.header, hs);
  for (let i = 0; i < n; i++) pos = writeKeyValueField(buf, pos, T2_LDELIM, kvs[i]!, sizes[i]!);
  pos = writeRangeResponseTail(buf, pos, m);
  return finishExact(buf, pos, size);
}

function readRangeResponse(r: ProtoReader, end: number): RangeResponse {
  let header: ResponseHeader | null = null;
  const kvs: KeyValue[] = [];
  let more = false;
  let count = 0;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: header = readResponseHeader(r, embeddedEnd(r)); break;
      case T2_LDELIM: kvs.push(readKeyValue(r, embeddedEnd(r))); break;
      case T3_VARINT: more = r.readBool(); break;
      case T4_VARINT: count = r.readInt64(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { header: header ?? emptyHeader(), kvs, more, count };
}

export function decodeRangeResponse(buf: Uint8Array): RangeResponse {
  const r = new ProtoReader(buf);
  return readRangeResponse(r, r.end);
}

// ================================================================ PutRequest

export function sizePutRequest(m: PutRequest): number {
  let s = bytesFieldSize(m.key) + bytesFieldSize(m.value);
  if (m.lease !== 0n) s += 1 + varintSizeBig(m.lease);
  if (m.prevKv) s += 2;
  if (m.ignoreValue) s += 2;
  if (m.ignoreLease) s += 2;
  return s;
}

export function writePutRequest(buf: Buffer, pos: number, m: PutRequest): number {
  if (m.key.length !== 0) { buf[pos++] = T1_LDELIM; pos = putBytes(buf, pos, m.key); }
  if (m.value.length !== 0) { buf[pos++] = T2_LDELIM; pos = putBytes(buf, pos, m.value); }
  if (m.lease !== 0n) { buf[pos++] = T3_VARINT; pos = putVarintBig(buf, pos, m.lease); }
  if (m.prevKv) { buf[pos++] = T4_VARINT; buf[pos++] = 1; }
  if (m.ignoreValue) { buf[pos++] = T5_VARINT; buf[pos++] = 1; }
  if (m.ignoreLease) { buf[pos++] = T6_VARINT; buf[pos++] = 1; }
  return pos;
}

function readPutRequest(r: ProtoReader, end: number): PutRequest {
  let key = EMPTY_BUFFER;
  let value = EMPTY_BUFFER;
  let lease = 0n;
  let prevKv = false;
  let ignoreValue = false;
  let ignoreLease = false;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: key = r.readBytes(); break;
      case T2_LDELIM: value = r.readBytes(); break;
      case T3_VARINT: lease = r.readInt64Big(); break;
      case T4_VARINT: prevKv = r.readBool(); break;
      case T5_VARINT: ignoreValue = r.readBool(); break;
      case T6_VARINT: ignoreLease = r.readBool(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { key, value, lease, prevKv, ignoreValue, ignoreLease };
}

export function decodePutRequest(buf: Uint8Array): PutRequest {
  const r = new ProtoReader(buf);
  return readPutRequest(r, r.end);
}

/** What the KV service checks of a PutRequest (etcd's checkPutRequest), without the bytes. */
export interface PutRequestFacts {
  keyLength: number;
  valueLength: number;
  /** lease != 0 */
  leased: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

const putFacts: PutRequestFacts = { keyLength: 0, valueLength: 0, leased: false, ignoreValue: false, ignoreLease: false };

/**
 * Reads a PutRequest as decodePutRequest does (the same fields win, the same
 * errors for malformed bytes) but keeps only what the service checks: no views,
 * no message object, no bigint. The server proposes the request's own bytes, so
 * a Put is otherwise never decoded on the main thread. The result is reused:
 * valid until the next call.
 */
export function scanPutRequest(buf: Uint8Array): Readonly<PutRequestFacts> {
  const r = new ProtoReader(buf);
  const f = putFacts;
  f.keyLength = 0; f.valueLength = 0; f.leased = false; f.ignoreValue = false; f.ignoreLease = false;
  while (r.pos < r.end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: f.keyLength = r.readLength(); r.pos += f.keyLength; break;
      case T2_LDELIM: f.valueLength = r.readLength(); r.pos += f.valueLength; break;
      case T3_VARINT: r.readVarint64(); f.leased = (r.lo | r.hi) !== 0; break;
      case T4_VARINT: r.readBool(); break;
      case T5_VARINT: f.ignoreValue = r.readBool(); break;
      case T6_VARINT: f.ignoreLease = r.readBool(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, r.end);
  return f;
}

export function encodePutRequest(m: PutRequest): Buffer {
  const size = sizePutRequest(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writePutRequest(buf, pos, m);
  return finishExact(buf, pos, size);
}

// ================================================================ PutResponse

export function sizePutResponse(m: PutResponse): number {
  let s = embeddedSize(sizeResponseHeader(m.header));
  if (m.prevKv !== null) s += embeddedSize(sizeKeyValue(m.prevKv));
  return s;
}

export function writePutResponse(buf: Buffer, pos: number, m: PutResponse): number {
  pos = writeHeaderField(buf, pos, m.header, sizeResponseHeader(m.header));
  if (m.prevKv !== null) pos = writeKeyValueField(buf, pos, T2_LDELIM, m.prevKv, sizeKeyValue(m.prevKv));
  return pos;
}

/** PutResponse straight from its parts (no PutResponse object needed). */
export function encodePutResponseBytes(header: ResponseHeader, prevKv: KeyValue | null): Buffer {
  const hs = sizeResponseHeader(header);
  let size = embeddedSize(hs);
  let ks = 0;
  if (prevKv !== null) {
    ks = sizeKeyValue(prevKv);
    size += embeddedSize(ks);
  }
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeHeaderField(buf, pos, header, hs);
  if (prevKv !== null) pos = writeKeyValueField(buf, pos, T2_LDELIM, prevKv, ks);
  return finishExact(buf, pos, size);
}

export function encodePutResponse(m: PutResponse): Buffer {
  return encodePutResponseBytes(m.header, m.prevKv);
}

function readPutResponse(r: ProtoReader, end: number): PutResponse {
  let header: ResponseHeader | null = null;
  let prevKv: KeyValue | null = null;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: header = readResponseHeader(r, embeddedEnd(r)); break;
      case T2_LDELIM: prevKv = readKeyValue(r, embeddedEnd(r)); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { header: header ?? emptyHeader(), prevKv };
}

export function decodePutResponse(buf: Uint8Array): PutResponse {
  const r = new ProtoReader(buf);
  return readPutResponse(r, r.end);
}

// ================================================================ DeleteRangeRequest

export function sizeDeleteRangeRequest(m: DeleteRangeRequest): number {
  return bytesFieldSize(m.key) + bytesFieldSize(m.rangeEnd) + (m.prevKv ? 2 : 0);
}

export function writeDeleteRangeRequest(buf: Buffer, pos: number, m: DeleteRangeRequest): number {
  if (m.key.length !== 0) { buf[pos++] = T1_LDELIM; pos = putBytes(buf, pos, m.key); }
  if (m.rangeEnd.length !== 0) { buf[pos++] = T2_LDELIM; pos = putBytes(buf, pos, m.rangeEnd); }
  if (m.prevKv) { buf[pos++] = T3_VARINT; buf[pos++] = 1; }
  return pos;
}

function readDeleteRangeRequest(r: ProtoReader, end: number): DeleteRangeRequest {
  let key = EMPTY_BUFFER;
  let rangeEnd = EMPTY_BUFFER;
  let prevKv = false;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: key = r.readBytes(); break;
      case T2_LDELIM: rangeEnd = presentRangeEnd(r.readBytes()); break;
      case T3_VARINT: prevKv = r.readBool(); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { key, rangeEnd, prevKv };
}

export function decodeDeleteRangeRequest(buf: Uint8Array): DeleteRangeRequest {
  const r = new ProtoReader(buf);
  return readDeleteRangeRequest(r, r.end);
}

export function encodeDeleteRangeRequest(m: DeleteRangeRequest): Buffer {
  const size = sizeDeleteRangeRequest(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeDeleteRangeRequest(buf, pos, m);
  return finishExact(buf, pos, size);
}

// ================================================================ DeleteRangeResponse

export function sizeDeleteRangeResponse(m: DeleteRangeResponse): number {
  let s = embeddedSize(sizeResponseHeader(m.header));
  if (m.deleted !== 0) s += 1 + varintSize(m.deleted);
  const kvs = m.prevKvs;
  for (let i = 0; i < kvs.length; i++) s += embeddedSize(sizeKeyValue(kvs[i]!));
  return s;
}

export function writeDeleteRangeResponse(buf: Buffer, pos: number, m: DeleteRangeResponse): number {
  pos = writeHeaderField(buf, pos, m.header, sizeResponseHeader(m.header));
  if (m.deleted !== 0) { buf[pos++] = T2_VARINT; pos = putVarint(buf, pos, m.deleted); }
  const kvs = m.prevKvs;
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i]!;
    pos = writeKeyValueField(buf, pos, T3_LDELIM, kv, sizeKeyValue(kv));
  }
  return pos;
}

export function encodeDeleteRangeResponse(m: DeleteRangeResponse): Buffer {
  const size = sizeDeleteRangeResponse(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeDeleteRangeResponse(buf, pos, m);
  return finishExact(buf, pos, size);
}

function readDeleteRangeResponse(r: ProtoReader, end: number): DeleteRangeResponse {
  let header: ResponseHeader | null = null;
  let deleted = 0;
  const prevKvs: KeyValue[] = [];
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: header = readResponseHeader(r, embeddedEnd(r)); break;
      case T2_VARINT: deleted = r.readInt64(); break;
      case T3_LDELIM: prevKvs.push(readKeyValue(r, embeddedEnd(r))); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { header: header ?? emptyHeader(), deleted, prevKvs };
}

export function decodeDeleteRangeResponse(buf: Uint8Array): DeleteRangeResponse {
  const r = new ProtoReader(buf);
  return readDeleteRangeResponse(r, r.end);
}

// ================================================================ Compare

export function sizeCompare(c: Compare): number {
  let s = bytesFieldSize(c.key);
  if (c.result !== 0) s += 1 + (c.result < 0 ? 10 : varintSize(c.result));
  if (c.target !== 0) s += 1 + (c.target < 0 ? 10 : varintSize(c.target));
  switch (c.targetUnion) {
    case 'version': s += 1 + varintSize(c.version); break;
    case 'createRevision': s += 1 + varintSize(c.createRevision); break;
    case 'modRevision': s += 1 + varintSize(c.modRevision); break;
    case 'value': s += 1 + varintSize(c.value.length) + c.value.length; break;
    case 'lease': s += 1 + varintSizeBig(c.lease); break;
    case null: break;
  }
  const re = c.rangeEnd.length;
  if (re !== 0) s += 2 + varintSize(re) + re;
  return s;
}

export function writeCompare(buf: Buffer, pos: number, c: Compare): number {
  if (c.result !== 0) { buf[pos++] = T1_VARINT; pos = putInt32(buf, pos, c.result); }
  if (c.target !== 0) { buf[pos++] = T2_VARINT; pos = putInt32(buf, pos, c.target); }
  if (c.key.length !== 0) { buf[pos++] = T3_LDELIM; pos = putBytes(buf, pos, c.key); }
  // A oneof member is written whenever it is the one set, even if zero.
  switch (c.targetUnion) {
    case 'version': buf[pos++] = T4_VARINT; pos = putVarint(buf, pos, c.version); break;
    case 'createRevision': buf[pos++] = T5_VARINT; pos = putVarint(buf, pos, c.createRevision); break;
    case 'modRevision': buf[pos++] = T6_VARINT; pos = putVarint(buf, pos, c.modRevision); break;
    case 'value': buf[pos++] = T7_LDELIM; pos = putBytes(buf, pos, c.value); break;
    case 'lease': buf[pos++] = T8_VARINT; pos = putVarintBig(buf, pos, c.lease); break;
    case null: break;
  }
  if (c.rangeEnd.length !== 0) { pos = putVarint32(buf, pos, T64_LDELIM); pos = putBytes(buf, pos, c.rangeEnd); }
  return pos;
}

function readCompare(r: ProtoReader, end: number): Compare {
  let result = 0;
  let target = 0;
  let key = EMPTY_BUFFER;
  let version = 0;
  let createRevision = 0;
  let modRevision = 0;
  let value = EMPTY_BUFFER;
  let lease = 0n;
  let targetUnion: Compare['targetUnion'] = null;
  let rangeEnd = EMPTY_BUFFER;
  while (r.pos < end) {
    const tag = r.readTag();
    // Setting a oneof member clears the others: the last one on the wire wins.
    switch (tag) {
      case T1_VARINT: result = r.readInt32(); break;
      case T2_VARINT: target = r.readInt32(); break;
      case T3_LDELIM: key = r.readBytes(); break;
      case T4_VARINT:
        version = r.readInt64();
        createRevision = 0; modRevision = 0; value = EMPTY_BUFFER; lease = 0n;
        targetUnion = 'version';
        break;
      case T5_VARINT:
        createRevision = r.readInt64();
        version = 0; modRevision = 0; value = EMPTY_BUFFER; lease = 0n;
        targetUnion = 'createRevision';
        break;
      case T6_VARINT:
        modRevision = r.readInt64();
        version = 0; createRevision = 0; value = EMPTY_BUFFER; lease = 0n;
        targetUnion = 'modRevision';
        break;
      case T7_LDELIM:
        value = r.readBytes();
        version = 0; createRevision = 0; modRevision = 0; lease = 0n;
        targetUnion = 'value';
        break;
      case T8_VARINT:
        lease = r.readInt64Big();
        version = 0; createRevision = 0; modRevision = 0; value = EMPTY_BUFFER;
        targetUnion = 'lease';
        break;
      case T64_LDELIM: rangeEnd = presentRangeEnd(r.readBytes()); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { result, target, key, version, createRevision, modRevision, value, lease, targetUnion, rangeEnd };
}

// ================================================================ RequestOp / TxnRequest

export function sizeRequestOp(op: RequestOp): number {
  switch (op.kind) {
    case 'range': return embeddedSize(sizeRangeRequest(op.range));
    case 'put': return embeddedSize(sizePutRequest(op.put));
    case 'deleteRange': return embeddedSize(sizeDeleteRangeRequest(op.deleteRange));
    case 'txn': return embeddedSize(sizeTxnRequest(op.txn));
    case 'none': return 0;
  }
}

export function writeRequestOp(buf: Buffer, pos: number, op: RequestOp): number {
  switch (op.kind) {
    case 'range':
      buf[pos++] = T1_LDELIM; pos = putVarint32(buf, pos, sizeRangeRequest(op.range)); pos = writeRangeRequest(buf, pos, op.range);
      break;
    case 'put':
      buf[pos++] = T2_LDELIM; pos = putVarint32(buf, pos, sizePutRequest(op.put)); pos = writePutRequest(buf, pos, op.put);
      break;
    case 'deleteRange':
      buf[pos++] = T3_LDELIM; pos = putVarint32(buf, pos, sizeDeleteRangeRequest(op.deleteRange));
      pos = writeDeleteRangeRequest(buf, pos, op.deleteRange);
      break;
    case 'txn':
      buf[pos++] = T4_LDELIM; pos = putVarint32(buf, pos, sizeTxnRequest(op.txn)); pos = writeTxnRequest(buf, pos, op.txn);
      break;
    case 'none':
      break;
  }
  return pos;
}

const NONE_OP: RequestOp = Object.freeze({ kind: 'none' as const });

function readRequestOp(r: ProtoReader, end: number, depth: number): RequestOp {
  let op: RequestOp = NONE_OP;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: op = { kind: 'range', range: readRangeRequest(r, embeddedEnd(r)) }; break;
      case T2_LDELIM: op = { kind: 'put', put: readPutRequest(r, embeddedEnd(r)) }; break;
      case T3_LDELIM: op = { kind: 'deleteRange', deleteRange: readDeleteRangeRequest(r, embeddedEnd(r)) }; break;
      case T4_LDELIM:
        if (depth >= MAX_TXN_DEPTH) throw new ProtoDecodeError(`txn nested deeper than ${MAX_TXN_DEPTH}`);
        op = { kind: 'txn', txn: readTxnRequest(r, embeddedEnd(r), depth + 1) };
        break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return op;
}

export function sizeTxnRequest(m: TxnRequest): number {
  let s = 0;
  for (let i = 0; i < m.compare.length; i++) s += embeddedSize(sizeCompare(m.compare[i]!));
  for (let i = 0; i < m.success.length; i++) s += 1 + sizeRequestOpBody(m.success[i]!);
  for (let i = 0; i < m.failure.length; i++) s += 1 + sizeRequestOpBody(m.failure[i]!);
  return s;
}

/** Length prefix plus body of a RequestOp (as an element of success/failure). */
function sizeRequestOpBody(op: RequestOp): number {
  const n = sizeRequestOp(op);
  return varintSize(n) + n;
}

export function writeTxnRequest(buf: Buffer, pos: number, m: TxnRequest): number {
  for (let i = 0; i < m.compare.length; i++) {
    const c = m.compare[i]!;
    buf[pos++] = T1_LDELIM; pos = putVarint32(buf, pos, sizeCompare(c)); pos = writeCompare(buf, pos, c);
  }
  for (let i = 0; i < m.success.length; i++) {
    const op = m.success[i]!;
    buf[pos++] = T2_LDELIM; pos = putVarint32(buf, pos, sizeRequestOp(op)); pos = writeRequestOp(buf, pos, op);
  }
  for (let i = 0; i < m.failure.length; i++) {
    const op = m.failure[i]!;
    buf[pos++] = T3_LDELIM; pos = putVarint32(buf, pos, sizeRequestOp(op)); pos = writeRequestOp(buf, pos, op);
  }
  return pos;
}

function readTxnRequest(r: ProtoReader, end: number, depth: number): TxnRequest {
  const compare: Compare[] = [];
  const success: RequestOp[] = [];
  const failure: RequestOp[] = [];
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: compare.push(readCompare(r, embeddedEnd(r))); break;
      case T2_LDELIM: success.push(readRequestOp(r, embeddedEnd(r), depth)); break;
      case T3_LDELIM: failure.push(readRequestOp(r, embeddedEnd(r), depth)); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { compare, success, failure };
}

export function decodeTxnRequest(buf: Uint8Array): TxnRequest {
  const r = new ProtoReader(buf);
  return readTxnRequest(r, r.end, 1);
}

export function encodeTxnRequest(m: TxnRequest): Buffer {
  const size = sizeTxnRequest(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeTxnRequest(buf, pos, m);
  return finishExact(buf, pos, size);
}

// ================================================================ ResponseOp / TxnResponse

export function sizeResponseOp(op: ResponseOp): number {
  switch (op.kind) {
    case 'range': return embeddedSize(sizeRangeResponse(op.range));
    case 'put': return embeddedSize(sizePutResponse(op.put));
    case 'deleteRange': return embeddedSize(sizeDeleteRangeResponse(op.deleteRange));
    case 'txn': return embeddedSize(sizeTxnResponse(op.txn));
  }
}

export function writeResponseOp(buf: Buffer, pos: number, op: ResponseOp): number {
  switch (op.kind) {
    case 'range':
      buf[pos++] = T1_LDELIM; pos = putVarint32(buf, pos, sizeRangeResponse(op.range)); pos = writeRangeResponse(buf, pos, op.range);
      break;
    case 'put':
      buf[pos++] = T2_LDELIM; pos = putVarint32(buf, pos, sizePutResponse(op.put)); pos = writePutResponse(buf, pos, op.put);
      break;
    case 'deleteRange':
      buf[pos++] = T3_LDELIM; pos = putVarint32(buf, pos, sizeDeleteRangeResponse(op.deleteRange));
      pos = writeDeleteRangeResponse(buf, pos, op.deleteRange);
      break;
    case 'txn':
      buf[pos++] = T4_LDELIM; pos = putVarint32(buf, pos, sizeTxnResponse(op.txn)); pos = writeTxnResponse(buf, pos, op.txn);
      break;
  }
  return pos;
}

export function sizeTxnResponse(m: TxnResponse): number {
  let s = embeddedSize(sizeResponseHeader(m.header));
  if (m.succeeded) s += 2;
  for (let i = 0; i < m.responses.length; i++) s += embeddedSize(sizeResponseOp(m.responses[i]!));
  return s;
}

export function writeTxnResponse(buf: Buffer, pos: number, m: TxnResponse): number {
  pos = writeHeaderField(buf, pos, m.header, sizeResponseHeader(m.header));
  if (m.succeeded) { buf[pos++] = T2_VARINT; buf[pos++] = 1; }
  for (let i = 0; i < m.responses.length; i++) {
    const op = m.responses[i]!;
    buf[pos++] = T3_LDELIM; pos = putVarint32(buf, pos, sizeResponseOp(op)); pos = writeResponseOp(buf, pos, op);
  }
  return pos;
}

export function encodeTxnResponse(m: TxnResponse): Buffer {
  const size = sizeTxnResponse(m);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeTxnResponse(buf, pos, m);
  return finishExact(buf, pos, size);
}

function readResponseOp(r: ProtoReader, end: number, depth: number): ResponseOp {
  let op: ResponseOp | null = null;
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: op = { kind: 'range', range: readRangeResponse(r, embeddedEnd(r)) }; break;
      case T2_LDELIM: op = { kind: 'put', put: readPutResponse(r, embeddedEnd(r)) }; break;
      case T3_LDELIM: op = { kind: 'deleteRange', deleteRange: readDeleteRangeResponse(r, embeddedEnd(r)) }; break;
      case T4_LDELIM:
        if (depth >= MAX_TXN_DEPTH) throw new ProtoDecodeError(`txn nested deeper than ${MAX_TXN_DEPTH}`);
        op = { kind: 'txn', txn: readTxnResponse(r, embeddedEnd(r), depth + 1) };
        break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  // ResponseOp has no 'none' shape; an empty one is read as an empty range response.
  return op ?? { kind: 'range', range: { header: emptyHeader(), kvs: [], more: false, count: 0 } };
}

function readTxnResponse(r: ProtoReader, end: number, depth: number): TxnResponse {
  let header: ResponseHeader | null = null;
  let succeeded = false;
  const responses: ResponseOp[] = [];
  while (r.pos < end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_LDELIM: header = readResponseHeader(r, embeddedEnd(r)); break;
      case T2_VARINT: succeeded = r.readBool(); break;
      case T3_LDELIM: responses.push(readResponseOp(r, embeddedEnd(r), depth)); break;
      default: r.skipField(tag & 7);
    }
  }
  checkEnd(r, end);
  return { header: header ?? emptyHeader(), succeeded, responses };
}

export function decodeTxnResponse(buf: Uint8Array): TxnResponse {
  const r = new ProtoReader(buf);
  return readTxnResponse(r, r.end, 1);
}

// ================================================================ Compaction

export function decodeCompactionRequest(buf: Uint8Array): CompactionRequest {
  const r = new ProtoReader(buf);
  let revision = 0;
  let physical = false;
  while (r.pos < r.end) {
    const tag = r.readTag();
    switch (tag) {
      case T1_VARINT: revision = r.readInt64(); break;
      case T2_VARINT: physical = r.readBool(); break;
      default: r.skipField(tag & 7);
    }
  }
  return { revision, physical };
}

export function encodeCompactionRequest(m: CompactionRequest): Buffer {
  const size = (m.revision !== 0 ? 1 + varintSize(m.revision) : 0) + (m.physical ? 2 : 0);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  if (m.revision !== 0) { buf[pos++] = T1_VARINT; pos = putVarint(buf, pos, m.revision); }
  if (m.physical) { buf[pos++] = T2_VARINT; buf[pos++] = 1; }
  return finishExact(buf, pos, size);
}

/**
 * Any response whose only field is `ResponseHeader header = 1`
 * (CompactionResponse, LeaseRevokeResponse, AuthEnableResponse, ...).
 */
export function encodeHeaderOnlyResponse(header: ResponseHeader): Buffer {
  const hs = sizeResponseHeader(header);
  const size = embeddedSize(hs);
  const buf = Buffer.allocUnsafe(size);
  let pos = 0;
  pos = writeHeaderField(buf, pos, header, hs);
  return finishExact(buf, pos, size);
}

export function encodeCompactionResponse(m: CompactionResponse): Buffer {
  return encodeHeaderOnlyResponse(m.header);
}

export function decodeCompactionResponse(buf: Uint8Array): CompactionResponse {
  const r = new ProtoReader(buf);
  let header: ResponseHeader | null = null;
  while (r.pos < r.end) {
    const tag = r.readTag();
    if (tag === T1_LDELIM) header = readResponseHeader(r, embeddedEnd(r));
    else r.skipField(tag & 7);
  }
  return { header: header ?? emptyHeader() };
}
