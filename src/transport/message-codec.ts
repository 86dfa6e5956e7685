// Binary codec for raft Message objects (src/raft/types.ts), for the peer transport.
//
// The design called for msgpackr frames. msgpackr is not used: its optional native
// package cannot be installed reproducibly from this machine's registry (npm ci
// fails), and a hand-written layout is smaller and faster anyway, because every
// field is known. So this is our own compact format:
//
//   Message (all integers little-endian):
//     u8   type            MessageType, 0..17
//     u8   flags           1 reject | 2 transfer present | 4 transfer value |
//                          8 context present | 16 context is a bigint | 32 snapshot present
//     u64  from, to        bigint ids, 8 bytes each
//     u64  term, logTerm, index, commit, rejectHint
//                          non-negative safe integers (lo u32, hi u32; hi < 2^21)
//     [ctx 8 bytes]        bigint: u64; number: f64           (if context present)
//     [snapshot]           u64 index, u64 term, u32 nVoters, u32 nLearners,
//                          u64 voter ids..., u64 learner ids... (if snapshot present)
//     u32  nEntries
//     entry * nEntries:    u64 index, u64 term, u8 type (255 = absent), u32 len, data
//
// Encoding is one sizing pass (messageSize) and one write into a caller's buffer
// (encodeMessageInto); entry data is copied exactly once, into that buffer.
// Decoding checks every length against the input and throws TransportDecodeError on
// anything malformed; it never reads out of bounds. Entry data is copied out of the
// input into a pooled slab reserved for entry data (so a long-lived log entry never
// pins a socket's read buffer), unless the caller asks for views.

import { MessageType, type Entry, type Message, type SnapshotMeta } from '../raft/types.js';

/** Malformed input on the wire: a stable code and a message, never a crash. */
export class TransportDecodeError extends Error {
  override name = 'TransportDecodeError';
  readonly code = 'ETSD_TRANSPORT_DECODE';
}

const F_REJECT = 1;
const F_TRANSFER_SET = 2;
const F_TRANSFER = 4;
const F_CTX = 8;
const F_CTX_BIGINT = 16;
const F_SNAPSHOT = 32;
const F_KNOWN = 63;

/** type, flags, from, to, 5 numbers, nEntries. */
const FIXED_BYTES = 1 + 1 + 8 + 8 + 5 * 8 + 4;
/** index, term, type, len. */
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 4;
/** index, term, nVoters, nLearners. */
const SNAPSHOT_FIXED_BYTES = 8 + 8 + 4 + 4;
const ENTRY_TYPE_ABSENT = 255;
const MAX_MESSAGE_TYPE = MessageType.MsgPreVoteResp;
/** Types 64..127 are the application's own messages between members (not raft's); carried as they are. */
export const APP_MESSAGE_TYPE_MIN = 64;
const APP_MESSAGE_TYPE_MAX = 127;
const MAX_U64 = (1n << 64n) - 1n;
const TWO_32 = 4294967296;
/** hi word of the largest safe integer (2^53 - 1). */
const MAX_SAFE_HI = 0x1fffff;

/** Bytes encodeMessageInto will write for `m`. */
export function messageSize(m: Message): number {
  let n = FIXED_BYTES;
  if (m.context !== undefined) n += 8;
  const s = m.snapshot;
  if (s !== undefined) n += SNAPSHOT_FIXED_BYTES + 8 * (s.conf.voters.length + s.conf.learners.length);
  const es = m.entries;
  for (let i = 0; i < es.length; i++) n += ENTRY_HEADER_BYTES + es[i]!.data.byteLength;
  return n;
}

function putU64n(dv: DataView, off: number, v: number): void {
  if (!(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`raft message field must be a non-negative safe integer, got ${v}`);
  dv.setUint32(off, v >>> 0, true);
  dv.setUint32(off + 4, Math.floor(v / TWO_32), true);
}

function putId(dv: DataView, off: number, v: bigint): void {
  if (v < 0n || v > MAX_U64) throw new RangeError(`raft id must fit in 64 unsigned bits, got ${v}`);
  dv.setBigUint64(off, v, true);
}

/**
 * Writes `m` at `buf[off..]` and returns the offset after it. `buf` must have
 * messageSize(m) bytes free there. Throws RangeError on a message that cannot be
 * represented (negative or unsafe numbers, ids beyond 64 bits, unknown type): a bug
 * in the caller, caught before anything reaches the wire.
 */
export function encodeMessageInto(m: Message, buf: Uint8Array, off: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const t = m.type;
  const known = (t >= 0 && t <= MAX_MESSAGE_TYPE) || (t >= APP_MESSAGE_TYPE_MIN && t <= APP_MESSAGE_TYPE_MAX);
  if (!(known && (t | 0) === t)) throw new RangeError(`unknown message type ${t}`);
  let flags = 0;
  if (m.reject) flags |= F_REJECT;
  if (m.transfer !== undefined) flags |= m.transfer ? F_TRANSFER_SET | F_TRANSFER : F_TRANSFER_SET;
  const ctx = m.context;
  if (ctx !== undefined) flags |= typeof ctx === 'bigint' ? F_CTX | F_CTX_BIGINT : F_CTX;
  const s = m.snapshot;
  if (s !== undefined) flags |= F_SNAPSHOT;
  buf[off] = t;
  buf[off + 1] = flags;
  putId(dv, off + 2, m.from);
  putId(dv, off + 10, m.to);
  putU64n(dv, off + 18, m.term);
  putU64n(dv, off + 26, m.logTerm);
  putU64n(dv, off + 34, m.index);
  putU64n(dv, off + 42, m.commit);
  putU64n(dv, off + 50, m.rejectHint);
  off += 58;
  if (ctx !== undefined) {
    if (typeof ctx === 'bigint') putId(dv, off, ctx);
    else dv.setFloat64(off, ctx, true);
    off += 8;
  }
  if (s !== undefined) off = writeSnapshot(dv, off, s);
  const es = m.entries;
  dv.setUint32(off, es.length, true);
  off += 4;
  for (let i = 0; i < es.length; i++) {
    const e = es[i]!;
    putU64n(dv, off, e.index);
    putU64n(dv, off + 8, e.term);
    const et = e.type;
    if (et === undefined) buf[off + 16] = ENTRY_TYPE_ABSENT;
    else if (et === 0 || et === 1) buf[off + 16] = et;
    else throw new RangeError(`unknown entry type ${String(et)}`);
    const d = e.data;
    dv.setUint32(off + 17, d.byteLength, true);
    off += ENTRY_HEADER_BYTES;
    buf.set(d, off);
    off += d.byteLength;
  }
  return off;
}

function writeSnapshot(dv: DataView, off: number, s: SnapshotMeta): number {
  const { voters, learners } = s.conf;
  putU64n(dv, off, s.index);
  putU64n(dv, off + 8, s.term);
  dv.setUint32(off + 16, voters.length, true);
  dv.setUint32(off + 20, learners.length, true);
  off += SNAPSHOT_FIXED_BYTES;
  for (let i = 0; i < voters.length; i++, off += 8) putId(dv, off, voters[i]!);
  for (let i = 0; i < learners.length; i++, off += 8) putId(dv, off, learners[i]!);
  return off;
}

/** One message in a fresh buffer of exactly its size. */
export function encodeMessage(m: Message): Buffer {
  const buf = Buffer.allocUnsafe(messageSize(m));
  const end = encodeMessageInto(m, buf, 0);
  if (end !== buf.length) throw new Error(`message codec: wrote ${end} of ${buf.length} bytes`);
  return buf;
}

export interface DecodeOptions {
  /**
   * Return entry data as views into `buf` instead of copying it into a per-message
   * slab. Only when the caller owns `buf`, never reuses it, and accepts that the
   * entries keep all of it alive.
   */
  views?: boolean;
}

function fail(what: string): never {
  throw new TransportDecodeError(`malformed raft message: ${what}`);
}

/** Reads u64 as a safe integer, or throws. */
function getU64n(dv: DataView, off: number, what: string): number {
  const hi = dv.getUint32(off + 4, true);
  if (hi > MAX_SAFE_HI) fail(`${what} beyond 2^53`);
  return hi * TWO_32 + dv.getUint32(off, true);
}

/** Decodes exactly one message occupying all of `buf`. */
export function decodeMessage(buf: Uint8Array, opts?: DecodeOptions): Message {
  const len = buf.byteLength;
  if (len < FIXED_BYTES) fail(`${len} bytes, need at least ${FIXED_BYTES}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, len);
  const type = buf[0]!;
  if (type > MAX_MESSAGE_TYPE && (type < APP_MESSAGE_TYPE_MIN || type > APP_MESSAGE_TYPE_MAX)) fail(`unknown type ${type}`);
  const flags = buf[1]!;
  if ((flags & ~F_KNOWN) !== 0) fail(`unknown flags 0x${flags.toString(16)}`);
  if ((flags & F_TRANSFER) !== 0 && (flags & F_TRANSFER_SET) === 0) fail('transfer value without transfer flag');
  if ((flags & F_CTX_BIGINT) !== 0 && (flags & F_CTX) === 0) fail('bigint context without context flag');
  const m: Message = {
    type: type as MessageType,
    from: dv.getBigUint64(2, true),
    to: dv.getBigUint64(10, true),
    term: getU64n(dv, 18, 'term'),
    logTerm: getU64n(dv, 26, 'logTerm'),
    index: getU64n(dv, 34, 'index'),
    entries: [],
    commit: getU64n(dv, 42, 'commit'),
    reject: (flags & F_REJECT) !== 0,
    rejectHint: getU64n(dv, 50, 'rejectHint'),
  };
  let off = 58;
  if ((flags & F_CTX) !== 0) {
    // FIXED_BYTES counted nEntries' 4 bytes; from here on check each read.
    if (off + 8 > len) fail('context truncated');
    m.context = (flags & F_CTX_BIGINT) !== 0 ? dv.getBigUint64(off, true) : dv.getFloat64(off, true);
    off += 8;
  }
  if ((flags & F_TRANSFER_SET) !== 0) m.transfer = (flags & F_TRANSFER) !== 0;
  if ((flags & F_SNAPSHOT) !== 0) off = readSnapshot(dv, off, m);
  if (off + 4 > len) fail('entry count truncated');
  const n = dv.getUint32(off, true);
  off += 4;
  if (n > (len - off) / ENTRY_HEADER_BYTES) fail(`${n} entries cannot fit in ${len - off} bytes`);
  if (n > 0) off = readEntries(buf, dv, off, n, m.entries, opts?.views === true);
  if (off !== len) fail(`${len - off} trailing bytes`);
  return m;
}

function readSnapshot(dv: DataView, off: number, m: Message): number {
  const len = dv.byteLength;
  if (off + SNAPSHOT_FIXED_BYTES > len) fail('snapshot truncated');
  const index = getU64n(dv, off, 'snapshot index');
  const term = getU64n(dv, off + 8, 'snapshot term');
  const nv = dv.getUint32(off + 16, true);
  const nl = dv.getUint32(off + 20, true);
  off += SNAPSHOT_FIXED_BYTES;
  if ((nv + nl) * 8 > len - off) fail(`snapshot conf of ${nv}+${nl} ids truncated`);
  const voters: bigint[] = new Array<bigint>(nv);
  const learners: bigint[] = new Array<bigint>(nl);
  for (let i = 0; i < nv; i++, off += 8) voters[i] = dv.getBigUint64(off, true);
  for (let i = 0; i < nl; i++, off += 8) learners[i] = dv.getBigUint64(off, true);
  m.snapshot = { index, term, conf: { voters, learners } };
  return off;
}

// Decoded entry data lives in shared slabs, like Node's own Buffer pool but only for
// entry data: consecutive entries share a slab and are freed together when the log is
// compacted, and a small entry never pins a socket chunk full of other bytes.
const SLAB_BYTES = 256 * 1024;
/** A message whose entries hold more than this gets a buffer of its own. */
const OWN_BUFFER_ABOVE = 32 * 1024;
let slabBuf: ArrayBuffer | null = null;
let slabOff = 0;

function allocData(n: number): Uint8Array {
  if (n > OWN_BUFFER_ABOVE) return new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
  if (slabBuf === null || slabOff + n > SLAB_BYTES) {
    slabBuf = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
    slabOff = 0;
  }
  const out = new Uint8Array(slabBuf, slabOff, n);
  slabOff = (slabOff + n + 7) & ~7;
  return out;
}

function readEntries(buf: Uint8Array, dv: DataView, off: number, n: number, out: Entry[], views: boolean): number {
  const len = buf.byteLength;
  // Pass 1: validate every header and sum the data, so the slab is one allocation.
  let total = 0;
  let at = off;
  for (let i = 0; i < n; i++) {
    if (at + ENTRY_HEADER_BYTES > len) fail(`entry ${i} header truncated`);
    const et = buf[at + 16]!;
    if (et !== 0 && et !== 1 && et !== ENTRY_TYPE_ABSENT) fail(`entry ${i}: unknown type ${et}`);
    const dlen = dv.getUint32(at + 17, true);
    at += ENTRY_HEADER_BYTES;
    if (dlen > len - at) fail(`entry ${i}: ${dlen} data bytes, ${len - at} left`);
    at += dlen;
    total += dlen;
  }
  const slab = views || total === 0 ? null : allocData(total);
  let sat = 0;
  for (let i = 0; i < n; i++) {
    const index = getU64n(dv, off, 'entry index');
    const term = getU64n(dv, off + 8, 'entry term');
    const et = buf[off + 16]!;
    const dlen = dv.getUint32(off + 17, true);
    off += ENTRY_HEADER_BYTES;
    let data: Uint8Array;
    if (views) {
      data = new Uint8Array(buf.buffer, buf.byteOffset + off, dlen);
    } else if (slab === null || dlen === 0) {
      data = new Uint8Array(0);
    } else {
      slab.set(buf.subarray(off, off + dlen), sat);
      data = slab.subarray(sat, sat + dlen);
      sat += dlen;
    }
    off += dlen;
    out.push(et === ENTRY_TYPE_ABSENT ? { index, term, data } : { index, term, data, type: et });
  }
  return off;
}
