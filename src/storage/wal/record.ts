// WAL record codec.
//
//   u32 bodyLength | u32 crc32c(body) | body | zero padding to 8 bytes
//   body = u8 type | u64 index | u64 term | payload      (little-endian)
//
// bodyLength excludes the header and the padding. A zero bodyLength marks the
// preallocated, never-written tail of a segment.

// The native addon's SSE4.2 CRC32C when it loads, the table-driven TypeScript one otherwise.
import { crc32c } from '../../native/index.js';

export const RecordType = {
  Entry: 1,
  HardState: 2,
  Meta: 3,
  /** A raft log entry of type ConfChange (membership change); its data is the encoded change. */
  ConfChangeEntry: 4,
} as const;

/** Record types that are raft log entries. */
export function isEntryRecord(type: number): boolean {
  return type === RecordType.Entry || type === RecordType.ConfChangeEntry;
}

export interface WalRecord {
  type: number;
  index: number;
  term: number;
  data: Uint8Array;
}

export type ScanStop = 'eof' | 'zero' | 'torn' | 'crc';

export interface ScanResult {
  /** Valid records, their `data` are views into the scanned buffer. */
  records: WalRecord[];
  /** Offset just after the last valid record (where scanning stopped). */
  end: number;
  stop: ScanStop;
}

export const RECORD_HEADER_BYTES = 8;
/** type + index + term */
export const BODY_FIXED_BYTES = 17;
/** Largest body accepted by the codec (bounds what a corrupt length can ask for). */
export const MAX_BODY_BYTES = 1 << 30;

const TWO32 = 0x1_0000_0000;

const align8 = (n: number): number => (n + 7) & ~7;

function checkRecord(rec: WalRecord): void {
  if (!Number.isInteger(rec.type) || rec.type < 1 || rec.type > 255) throw new RangeError(`WAL record type ${rec.type} not in 1..255`);
  if (!Number.isSafeInteger(rec.index) || rec.index < 0) throw new RangeError(`WAL record index ${rec.index} is not a safe non-negative integer`);
  if (!Number.isSafeInteger(rec.term) || rec.term < 0) throw new RangeError(`WAL record term ${rec.term} is not a safe non-negative integer`);
  if (BODY_FIXED_BYTES + rec.data.length > MAX_BODY_BYTES) throw new RangeError(`WAL record payload of ${rec.data.length} bytes is too large`);
}

/** Bytes the record takes on disk, header and padding included. */
export function encodedSize(rec: WalRecord): number {
  return align8(RECORD_HEADER_BYTES + BODY_FIXED_BYTES + rec.data.length);
}

function writeU64(out: Buffer, v: number, at: number): void {
  out.writeUInt32LE(v % TWO32, at);
  out.writeUInt32LE(Math.floor(v / TWO32), at + 4);
}

function readU64(buf: Buffer, at: number): number {
  const hi = buf.readUInt32LE(at + 4);
  if (hi >= 0x200000) return -1; // >= 2^53: not something we wrote
  return hi * TWO32 + buf.readUInt32LE(at);
}

/** Encode `rec` at `offset` in `out` (which must have encodedSize bytes free); returns the new offset. */
export function encodeRecord(rec: WalRecord, out: Buffer, offset: number): number {
  checkRecord(rec);
  const bodyLen = BODY_FIXED_BYTES + rec.data.length;
  const next = offset + align8(RECORD_HEADER_BYTES + bodyLen);
  if ((offset & 7) !== 0 || next > out.length) throw new RangeError(`WAL record at ${offset} (${next - offset} bytes) does not fit a ${out.length}-byte buffer or is unaligned`);
  const body = offset + RECORD_HEADER_BYTES;
  out[body] = rec.type;
  writeU64(out, rec.index, body + 1);
  writeU64(out, rec.term, body + 9);
  out.set(rec.data, body + BODY_FIXED_BYTES);
  out.fill(0, body + bodyLen, next);
  out.writeUInt32LE(bodyLen, offset);
  out.writeUInt32LE(crc32c(out.subarray(body, body + bodyLen)), offset + 4);
  return next;
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Decode records from buf[start, end). Stops at the first zero length
 * ('zero'), a record running past `end` ('torn'), a record whose checksum or
 * fields are wrong ('crc'), or at `end` ('eof').
 */
export function scanRecords(buf: Buffer, start: number, end: number): ScanResult {
  const records: WalRecord[] = [];
  let at = start;
  let stop: ScanStop = 'eof';
  while (at < end) {
    if (end - at < RECORD_HEADER_BYTES) {
      // Too short for a header: the unwritten tail if all zero, else a torn header.
      stop = isZero(buf, at, end) ? 'zero' : 'torn';
      break;
    }
    const bodyLen = buf.readUInt32LE(at);
    if (bodyLen === 0) {
      stop = 'zero';
      break;
    }
    if (bodyLen < BODY_FIXED_BYTES || bodyLen > MAX_BODY_BYTES) {
      stop = 'crc';
      break;
    }
    const body = at + RECORD_HEADER_BYTES;
    const next = at + align8(RECORD_HEADER_BYTES + bodyLen);
    if (body + bodyLen > end) {
      stop = 'torn';
      break;
    }
    if (crc32c(buf.subarray(body, body + bodyLen)) !== buf.readUInt32LE(at + 4)) {
      stop = 'crc';
      break;
    }
    const type = buf[body]!;
    const index = readU64(buf, body + 1);
    const term = readU64(buf, body + 9);
    if (type === 0 || index < 0 || term < 0) {
      stop = 'crc';
      break;
    }
    records.push({ type, index, term, data: buf.subarray(body + BODY_FIXED_BYTES, body + bodyLen) });
    at = Math.min(next, end);
  }
  return { records, end: at, stop };
}
