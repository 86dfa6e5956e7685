// Hand-written codec for the Lease service messages (small, not on a hot path
// except keep-alive, which stays cheap here).

import type { ResponseHeader } from './kv-types.js';
import { encodeResponseHeader } from './kv-codec.js';
import { ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from './wire.js';

/** Reads int64 fields by number from a flat message; other fields are skipped. */
function readInt64Fields(buf: Uint8Array, fields: number[]): Map<number, bigint> {
  const r = new ProtoReader(buf);
  const out = new Map<number, bigint>();
  while (r.pos < r.end) {
    const tag = r.readTag();
    const f = tag >>> 3;
    if ((tag & 7) === WIRE_VARINT && fields.includes(f)) out.set(f, BigInt.asIntN(64, r.readVarintBig()));
    else r.skipField(tag & 7);
  }
  return out;
}

export interface LeaseGrantRequest { ttl: bigint; id: bigint }
export function decodeLeaseGrantRequest(buf: Uint8Array): LeaseGrantRequest {
  const m = readInt64Fields(buf, [1, 2]);
  return { ttl: m.get(1) ?? 0n, id: m.get(2) ?? 0n };
}
export function encodeLeaseGrantRequest(m: LeaseGrantRequest): Buffer {
  const w = new ProtoWriter(24);
  if (m.ttl !== 0n) { w.writeTag(1, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, m.ttl)); }
  if (m.id !== 0n) { w.writeTag(2, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, m.id)); }
  return w.finish();
}

/** LeaseRevokeRequest / LeaseKeepAliveRequest { ID = 1 }. */
export function encodeLeaseIdRequest(id: bigint): Buffer {
  const w = new ProtoWriter(12);
  writeInt64(w, 1, id);
  return w.finish();
}

/** LeaseRevokeRequest, LeaseKeepAliveRequest: field 1 = ID. */
export function decodeLeaseId(buf: Uint8Array): bigint {
  return readInt64Fields(buf, [1]).get(1) ?? 0n;
}

export function decodeLeaseTimeToLiveRequest(buf: Uint8Array): { id: bigint; keys: boolean } {
  const m = readInt64Fields(buf, [1, 2]);
  return { id: m.get(1) ?? 0n, keys: (m.get(2) ?? 0n) !== 0n };
}

function writeHeader(w: ProtoWriter, h: ResponseHeader): void {
  w.writeTag(1, WIRE_LDELIM);
  w.writeBytes(encodeResponseHeader(h));
}

function writeInt64(w: ProtoWriter, field: number, v: bigint): void {
  if (v === 0n) return;
  w.writeTag(field, WIRE_VARINT);
  w.writeVarintBig(BigInt.asUintN(64, v));
}

export function encodeLeaseGrantResponse(h: ResponseHeader, id: bigint, ttl: bigint): Buffer {
  const w = new ProtoWriter(64);
  writeHeader(w, h);
  writeInt64(w, 2, id);
  writeInt64(w, 3, ttl);
  return w.finish();
}

export function encodeHeaderOnly(h: ResponseHeader): Buffer {
  const w = new ProtoWriter(48);
  writeHeader(w, h);
  return w.finish();
}

export function encodeLeaseKeepAliveResponse(h: ResponseHeader, id: bigint, ttl: bigint): Buffer {
  return encodeLeaseGrantResponse(h, id, ttl);
}

export function encodeLeaseTimeToLiveResponse(h: ResponseHeader, id: bigint, ttl: bigint, granted: bigint, keys: Buffer[]): Buffer {
  const w = new ProtoWriter(64 + keys.reduce((a, k) => a + k.length + 6, 0));
  writeHeader(w, h);
  writeInt64(w, 2, id);
  writeInt64(w, 3, ttl);
  writeInt64(w, 4, granted);
  for (const k of keys) { w.writeTag(5, WIRE_LDELIM); w.writeBytes(k); }
  return w.finish();
}

export function encodeLeaseLeasesResponse(h: ResponseHeader, ids: bigint[]): Buffer {
  const w = new ProtoWriter(48 + ids.length * 14);
  writeHeader(w, h);
  for (const id of ids) {
    const s = new ProtoWriter(12);
    writeInt64(s, 1, id);
    w.writeTag(2, WIRE_LDELIM);
    w.writeBytes(s.finish());
  }
  return w.finish();
}
