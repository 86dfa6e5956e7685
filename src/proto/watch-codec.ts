// Hand-written codec for the Watch service (etcdserverpb.WatchRequest /
// WatchResponse, mvccpb.Event). Events travel between threads already encoded
// as mvccpb.Event bytes, so fan-out splices bytes instead of re-encoding.

import type { KeyValue, ResponseHeader } from './kv-types.js';
import { ProtoDecodeError, ProtoReader, ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from './wire.js';
import { decodeKeyValue, decodeResponseHeader, encodeKeyValue, encodeResponseHeader } from './kv-codec.js';

export interface WatchCreateRequest {
  key: Buffer;
  rangeEnd: Buffer;
  startRevision: number;
  progressNotify: boolean;
  /** etcd's FilterType values: 0 NOPUT, 1 NODELETE. */
  filters: number[];
  prevKv: boolean;
  watchId: number;
  fragment: boolean;
}

export type WatchRequest =
  | { kind: 'create'; create: WatchCreateRequest }
  | { kind: 'cancel'; watchId: number }
  | { kind: 'progress' }
  | { kind: 'none' };

export const FILTER_NOPUT = 0;
export const FILTER_NODELETE = 1;

export function decodeWatchRequest(buf: Uint8Array): WatchRequest {
  const r = new ProtoReader(buf);
  let out: WatchRequest = { kind: 'none' };
  while (r.pos < r.end) {
    const tag = r.readTag();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WIRE_LDELIM) {
      const len = r.readLength();
      out = { kind: 'create', create: decodeCreate(r.buf.subarray(r.pos, r.pos + len)) };
      r.pos += len;
    } else if (field === 2 && wt === WIRE_LDELIM) {
      const len = r.readLength();
      const sub = new ProtoReader(r.buf, r.pos, r.pos + len);
      let watchId = 0;
      while (sub.pos < sub.end) {
        const t = sub.readTag();
        if (t >>> 3 === 1 && (t & 7) === WIRE_VARINT) watchId = sub.readInt64();
        else sub.skipField(t & 7);
      }
      r.pos += len;
      out = { kind: 'cancel', watchId };
    } else if (field === 3 && wt === WIRE_LDELIM) {
      // Read the length first: `r.pos += r.readLength()` would add to the old position.
      const len = r.readLength();
      r.pos += len;
      out = { kind: 'progress' };
    } else {
      r.skipField(wt);
    }
  }
  return out;
}

function decodeCreate(buf: Buffer): WatchCreateRequest {
  const r = new ProtoReader(buf);
  const c: WatchCreateRequest = {
    key: Buffer.alloc(0), rangeEnd: Buffer.alloc(0), startRevision: 0, progressNotify: false, filters: [],
    prevKv: false, watchId: 0, fragment: false,
  };
  while (r.pos < r.end) {
    const tag = r.readTag();
    const field = tag >>> 3;
    const wt = tag & 7;
    switch (field) {
      case 1: if (wt === WIRE_LDELIM) { c.key = r.readBytes(); continue; } break;
      case 2: if (wt === WIRE_LDELIM) { c.rangeEnd = r.readBytes(); continue; } break;
      case 3: if (wt === WIRE_VARINT) { c.startRevision = r.readInt64(); continue; } break;
      case 4: if (wt === WIRE_VARINT) { c.progressNotify = r.readBool(); continue; } break;
      case 5:
        if (wt === WIRE_VARINT) { c.filters.push(r.readVarint()); continue; }
        if (wt === WIRE_LDELIM) { // packed
          const len = r.readLength();
          const end = r.pos + len;
          const sub = new ProtoReader(r.buf, r.pos, end);
          while (sub.pos < end) c.filters.push(sub.readVarint());
          r.pos = end;
          continue;
        }
        break;
      case 6: if (wt === WIRE_VARINT) { c.prevKv = r.readBool(); continue; } break;
      case 7: if (wt === WIRE_VARINT) { c.watchId = r.readInt64(); continue; } break;
      case 8: if (wt === WIRE_VARINT) { c.fragment = r.readBool(); continue; } break;
    }
    r.skipField(wt);
  }
  return c;
}

export interface WatchResponseFields {
  header: ResponseHeader;
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
  /** Encoded mvccpb.Event messages. */
  events?: Uint8Array[];
}

export function encodeWatchResponse(m: WatchResponseFields): Buffer {
  const w = new ProtoWriter(64 + (m.events ? m.events.reduce((a, e) => a + e.length + 6, 0) : 0));
  w.writeTag(1, WIRE_LDELIM);
  w.writeBytes(encodeResponseHeader(m.header));
  if (m.watchId !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarintBig(BigInt.asUintN(64, BigInt(m.watchId))); }
  if (m.created) { w.writeTag(3, WIRE_VARINT); w.writeBool(true); }
  if (m.canceled) { w.writeTag(4, WIRE_VARINT); w.writeBool(true); }
  if (m.compactRevision) { w.writeTag(5, WIRE_VARINT); w.writeVarint(m.compactRevision); }
  if (m.cancelReason) { w.writeTag(6, WIRE_LDELIM); w.writeString(m.cancelReason); }
  if (m.fragment) { w.writeTag(7, WIRE_VARINT); w.writeBool(true); }
  if (m.events) for (const e of m.events) { w.writeTag(11, WIRE_LDELIM); w.writeBytes(e); }
  return w.finish();
}

export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

/** mvccpb.Event bytes: type (omitted for PUT), kv. */
export function encodeEvent(type: number, kv: KeyValue): Buffer {
  const kvBytes = encodeKeyValue(kv);
  const w = new ProtoWriter(kvBytes.length + 8);
  if (type !== EVENT_PUT) { w.writeTag(1, WIRE_VARINT); w.writeVarint(type); }
  w.writeTag(2, WIRE_LDELIM);
  w.writeBytes(kvBytes);
  return w.finish();
}

/** Appends prev_kv (field 3) to encoded event bytes: protobuf fields concatenate. */
export function withPrevKv(event: Uint8Array, prev: KeyValue): Buffer {
  const kvBytes = encodeKeyValue(prev);
  const w = new ProtoWriter(event.length + kvBytes.length + 8);
  w.writeRaw(event);
  w.writeTag(3, WIRE_LDELIM);
  w.writeBytes(kvBytes);
  return w.finish();
}

export { ProtoDecodeError };

export function encodeWatchCreateRequest(c: Partial<WatchCreateRequest> & { key: Buffer }): Buffer {
  const inner = new ProtoWriter(32 + c.key.length + (c.rangeEnd?.length ?? 0));
  inner.writeTag(1, WIRE_LDELIM); inner.writeBytes(c.key);
  if (c.rangeEnd && c.rangeEnd.length > 0) { inner.writeTag(2, WIRE_LDELIM); inner.writeBytes(c.rangeEnd); }
  if (c.startRevision) { inner.writeTag(3, WIRE_VARINT); inner.writeVarint(c.startRevision); }
  if (c.prevKv) { inner.writeTag(6, WIRE_VARINT); inner.writeBool(true); }
  const w = new ProtoWriter(inner.finish().length + 8);
  const body = inner.finish();
  w.writeTag(1, WIRE_LDELIM);
  w.writeBytes(body);
  return w.finish();
}

export interface DecodedEvent { type: number; kv: KeyValue }
export interface DecodedWatchResponse {
  header: ResponseHeader; watchId: number; created: boolean; canceled: boolean; compactRevision: number; events: DecodedEvent[];
}

/** Decodes a WatchResponse (for the server's own watchers: lock, election). */
export function decodeWatchResponse(buf: Uint8Array): DecodedWatchResponse {
  const r = new ProtoReader(buf);
  const out: DecodedWatchResponse = {
    header: { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 }, watchId: 0, created: false, canceled: false, compactRevision: 0, events: [],
  };
  while (r.pos < r.end) {
    const tag = r.readTag();
    const f = tag >>> 3;
    const wt = tag & 7;
    if (f === 1 && wt === WIRE_LDELIM) out.header = decodeResponseHeader(r.readBytes());
    else if (f === 2 && wt === WIRE_VARINT) out.watchId = r.readInt64();
    else if (f === 3 && wt === WIRE_VARINT) out.created = r.readBool();
    else if (f === 4 && wt === WIRE_VARINT) out.canceled = r.readBool();
    else if (f === 5 && wt === WIRE_VARINT) out.compactRevision = r.readInt64();
    else if (f === 11 && wt === WIRE_LDELIM) {
      const ev = new ProtoReader(r.readBytes());
      const e: DecodedEvent = { type: 0, kv: decodeKeyValue(Buffer.alloc(0)) };
      while (ev.pos < ev.end) {
        const t = ev.readTag();
        if (t >>> 3 === 1 && (t & 7) === WIRE_VARINT) e.type = ev.readVarint();
        else if (t >>> 3 === 2 && (t & 7) === WIRE_LDELIM) e.kv = decodeKeyValue(ev.readBytes());
        else ev.skipField(t & 7);
      }
      out.events.push(e);
    } else r.skipField(wt);
  }
  return out;
}
