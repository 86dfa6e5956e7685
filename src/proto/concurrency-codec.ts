// Codec for v3lockpb and v3electionpb (small messages, off the hot path).

import type { KeyValue, ResponseHeader } from './kv-types.js';
import { encodeKeyValue, encodeResponseHeader } from './kv-codec.js';
import { ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from './wire.js';

const EMPTY = Buffer.alloc(0);

/** Reads a flat message into bytes and int64 fields by number (last one wins). */
function fields(buf: Uint8Array): { bytes: Map<number, Buffer>; ints: Map<number, bigint> } {
  const r = new ProtoReader(buf);
  const bytes = new Map<number, Buffer>();
  const ints = new Map<number, bigint>();
  while (r.pos < r.end) {
    const tag = r.readTag();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (wt === WIRE_LDELIM) bytes.set(f, r.readBytes());
    else if (wt === WIRE_VARINT) ints.set(f, BigInt.asIntN(64, r.readVarintBig()));
    else r.skipField(wt);
  }
  return { bytes, ints };
}

export interface LeaderKey { name: Buffer; key: Buffer; rev: number; lease: bigint }

function decodeLeaderKey(buf: Buffer | undefined): LeaderKey | null {
  if (!buf) return null;
  const f = fields(buf);
  return { name: f.bytes.get(1) ?? EMPTY, key: f.bytes.get(2) ?? EMPTY, rev: Number(f.ints.get(3) ?? 0n), lease: f.ints.get(4) ?? 0n };
}

function encodeLeaderKey(l: LeaderKey): Buffer {
  const w = new ProtoWriter(32 + l.name.length + l.key.length);
  if (l.name.length) { w.writeTag(1, WIRE_LDELIM); w.writeBytes(l.name); }
  if (l.key.length) { w.writeTag(2, WIRE_LDELIM); w.writeBytes(l.key); }
  if (l.rev) { w.writeTag(3, WIRE_VARINT); w.writeVarint(l.rev); }
  if (l.lease) { w.writeTag(4, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, l.lease)); }
  return w.finish();
}

export const decodeLockRequest = (b: Uint8Array) => { const f = fields(b); return { name: f.bytes.get(1) ?? EMPTY, lease: f.ints.get(2) ?? 0n }; };
export const decodeUnlockRequest = (b: Uint8Array) => ({ key: fields(b).bytes.get(1) ?? EMPTY });
export const decodeCampaignRequest = (b: Uint8Array) => {
  const f = fields(b);
  return { name: f.bytes.get(1) ?? EMPTY, lease: f.ints.get(2) ?? 0n, value: f.bytes.get(3) ?? EMPTY };
};
export const decodeProclaimRequest = (b: Uint8Array) => {
  const f = fields(b);
  return { leader: decodeLeaderKey(f.bytes.get(1)), value: f.bytes.get(2) ?? EMPTY };
};
export const decodeLeaderRequest = (b: Uint8Array) => ({ name: fields(b).bytes.get(1) ?? EMPTY });
export const decodeResignRequest = (b: Uint8Array) => ({ leader: decodeLeaderKey(fields(b).bytes.get(1)) });

/** A response made of a header (field 1) and optional further length-delimited fields. */
function encodeWithHeader(h: ResponseHeader, extra: [number, Buffer][] = []): Buffer {
  const hb = encodeResponseHeader(h);
  const w = new ProtoWriter(16 + hb.length + extra.reduce((a, [, b]) => a + b.length + 6, 0));
  w.writeTag(1, WIRE_LDELIM);
  w.writeBytes(hb);
  for (const [f, b] of extra) { w.writeTag(f, WIRE_LDELIM); w.writeBytes(b); }
  return w.finish();
}

export const encodeLockResponse = (h: ResponseHeader, key: Buffer) => encodeWithHeader(h, [[2, key]]);
export const encodeHeaderResponse = (h: ResponseHeader) => encodeWithHeader(h);
export const encodeCampaignResponse = (h: ResponseHeader, l: LeaderKey) => encodeWithHeader(h, [[2, encodeLeaderKey(l)]]);
export const encodeLeaderResponse = (h: ResponseHeader, kv: KeyValue) => encodeWithHeader(h, [[2, encodeKeyValue(kv)]]);
