// The snapshot file: a member's whole state machine (every RocksDB pair) as
// checksummed chunks, sent to a follower too far behind the log.
//
//   header  (48 B)  "etsdsnap" | u32 version | u32 0 | f64 appliedIndex | f64 appliedTerm
//                   | f64 revision | f64 compactRevision
//   chunk*          u32 payloadLength | u32 crc32c(payload) | payload
//                   payload = (u32 keyLen | key | u32 valueLen | value)+, keys strictly ascending
//   trailer (32 B)  u32 0xffffffff | f64 pairCount | f64 byteCount (header + chunks)
//                   | u32 crc32c(header) | "snapdone"
//
// Little-endian. The file ends right after the trailer. Readers check every
// CRC, the counts and the key order, so a truncated or damaged file is refused
// before anything is written from it.

import * as fs from 'node:fs';
import { crc32c } from '../../native/index.js';

export const SNAPSHOT_MAGIC = Buffer.from('etsdsnap', 'latin1');
export const SNAPSHOT_VERSION = 1;
const SENTINEL = Buffer.from('snapdone', 'latin1');
const TRAILER_TAG = 0xffffffff;
export const HEADER_BYTES = 48;
export const TRAILER_BYTES = 32;
const CHUNK_HEADER_BYTES = 8;
/** Chunks are cut near this size; a single larger pair gets a chunk of its own. */
export const CHUNK_TARGET_BYTES = 1024 * 1024;
/** No chunk may be larger (a reader refuses it rather than allocating it). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** Bytes read from the file per read(2). */
const READ_BYTES = 4 * 1024 * 1024;

export interface SnapshotHeader {
  appliedIndex: number;
  appliedTerm: number;
  revision: number;
  compactRevision: number;
}

export interface SnapshotSummary {
  header: SnapshotHeader;
  pairs: number;
  /** Size of the whole file. */
  bytes: number;
}

export type SnapshotFormatErrorCode = 'BAD_MAGIC' | 'BAD_VERSION' | 'TRUNCATED' | 'BAD_CRC' | 'BAD_CHUNK' | 'BAD_TRAILER';

/** A snapshot file that is not a complete, intact snapshot. */
export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
  constructor(readonly code: SnapshotFormatErrorCode, message: string) {
    super(`snapshot: ${message}`);
  }
}

export function encodeHeader(h: SnapshotHeader): Buffer {
  for (const v of [h.appliedIndex, h.appliedTerm, h.revision, h.compactRevision]) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`snapshot header value ${v} is not a non-negative integer`);
  }
  const b = Buffer.alloc(HEADER_BYTES);
  SNAPSHOT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SNAPSHOT_VERSION, 8);
  b.writeDoubleLE(h.appliedIndex, 16);
  b.writeDoubleLE(h.appliedTerm, 24);
  b.writeDoubleLE(h.revision, 32);
  b.writeDoubleLE(h.compactRevision, 40);
  return b;
}

function decodeHeader(b: Buffer): SnapshotHeader {
  if (!b.subarray(0, 8).equals(SNAPSHOT_MAGIC)) throw new SnapshotFormatError('BAD_MAGIC', 'not a snapshot file (bad magic)');
  const version = b.readUInt32LE(8);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotFormatError('BAD_VERSION', `format version ${version}, want ${SNAPSHOT_VERSION}`);
  return { appliedIndex: b.readDoubleLE(16), appliedTerm: b.readDoubleLE(24), revision: b.readDoubleLE(32), compactRevision: b.readDoubleLE(40) };
}

/**
 * Writes a snapshot file, a chunk at a time. `finish` writes the trailer and
 * fdatasyncs; the caller renames the file into place.
 */
export class SnapshotFileWriter {
  private readonly fd: number;
  private readonly headerCrc: number;
  private chunk = Buffer.allocUnsafe(CHUNK_TARGET_BYTES);
  private used = 0;
  private offset = 0;
  private pairs = 0;
  private lastKey: Buffer | null = null;

  constructor(path: string, header: SnapshotHeader) {
    const h = encodeHeader(header);
    this.headerCrc = crc32c(h);
    this.fd = fs.openSync(path, 'w');
    this.writeAll(h);
  }

  /** Adds one pair; keys must come in strictly ascending byte order (as a RocksDB iterator gives them). */
  add(key: Uint8Array, value: Uint8Array): void {
    const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    if (this.lastKey && Buffer.compare(this.lastKey, k) >= 0) throw new Error('snapshot: keys out of order');
    const need = 8 + key.length + value.length;
    if (need > MAX_CHUNK_BYTES) throw new RangeError(`snapshot: pair of ${need} bytes passes the ${MAX_CHUNK_BYTES}-byte chunk limit`);
    if (this.used > 0 && this.used + need > CHUNK_TARGET_BYTES) this.flushChunk();
    if (need > this.chunk.length) this.chunk = Buffer.allocUnsafe(need);
    const c = this.chunk;
    c.writeUInt32LE(key.length, this.used);
    c.set(key, this.used + 4);
    c.writeUInt32LE(value.length, this.used + 4 + key.length);
    c.set(value, this.used + 8 + key.length);
    this.used += need;
    this.pairs++;
    this.lastKey = Buffer.from(k);
    // Keep the big buffer only for the pair that needed it.
    if (this.chunk.length > CHUNK_TARGET_BYTES) { this.flushChunk(); this.chunk = Buffer.allocUnsafe(CHUNK_TARGET_BYTES); }
  }

  /** Writes the last chunk and the trailer, fdatasyncs and closes. */
  finish(): { pairs: number; bytes: number } {
    if (this.used > 0) this.flushChunk();
    const t = Buffer.alloc(TRAILER_BYTES);
    t.writeUInt32LE(TRAILER_TAG, 0);
    t.writeDoubleLE(this.pairs, 4);
    t.writeDoubleLE(this.offset, 12);
    t.writeUInt32LE(this.headerCrc, 20);
    SENTINEL.copy(t, 24);
    this.writeAll(t);
    fs.fdatasyncSync(this.fd);
    fs.closeSync(this.fd);
    return { pairs: this.pairs, bytes: this.offset };
  }

  /** Closes the file without finishing it (the caller removes it). */
  abort(): void {
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
  }

  private flushChunk(): void {
    const payload = this.chunk.subarray(0, this.used);
    const h = Buffer.allocUnsafe(CHUNK_HEADER_BYTES);
    h.writeUInt32LE(payload.length, 0);
    h.writeUInt32LE(crc32c(payload), 4);
    this.writeAll(h);
    this.writeAll(payload);
    this.used = 0;
  }

  private writeAll(b: Buffer): void {
    let at = 0;
    while (at < b.length) at += fs.writeSync(this.fd, b, at, b.length - at, this.offset + at);
    this.offset += b.length;
  }
}

/** Sequential exact reads from a file; running out of bytes is truncation. */
class FileCursor {
  private buf = Buffer.allocUnsafe(READ_BYTES);
  private start = 0;
  private end = 0;
  /** File offset of buf[end]. */
  private fileAt = 0;

  constructor(private readonly fd: number) {}

  /** Offset of the next unread byte. */
  get offset(): number { return this.fileAt - (this.end - this.start); }

  /** The next n bytes (a view valid until the next call), or a TRUNCATED error naming `what`. */
  take(n: number, what: string): Buffer {
    if (this.end - this.start < n) this.fill(n, what);
    const out = this.buf.subarray(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** True at end of file. */
  atEof(): boolean {
    if (this.end > this.start) return false;
    this.start = this.end = 0;
    const got = fs.readSync(this.fd, this.buf, 0, 1, this.fileAt);
    this.end = got;
    this.fileAt += got;
    return got === 0;
  }

  private fill(n: number, what: string): void {
    const have = this.end - this.start;
    if (this.buf.length < n) {
      const bigger = Buffer.allocUnsafe(Math.max(n, READ_BYTES));
      this.buf.copy(bigger, 0, this.start, this.end);
      this.buf = bigger;
    } else {
      this.buf.copy(this.buf, 0, this.start, this.end);
    }
    this.start = 0;
    this.end = have;
    while (this.end < n) {
      const got = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.fileAt);
      if (got === 0) throw new SnapshotFormatError('TRUNCATED', `file ends inside the ${what} at offset ${this.offset}`);
      this.end += got;
      this.fileAt += got;
    }
  }
}

/** One chunk's pairs; the buffers are views into the reader's buffer, valid until the next chunk is read. */
export interface SnapshotChunk { keys: Buffer[]; values: Buffer[] }

/**
 * Reads and checks a snapshot file, yielding each chunk's pairs after that
 * chunk's CRC has passed, and returns the summary once the trailer checked.
 * Throws SnapshotFormatError on any damage; chunks already yielded before the
 * damage was found are not taken back, so callers that must not act on a bad
 * file verify it first (verifySnapshotFile) and read it again.
 */
export function* readSnapshotChunks(path: string): Generator<SnapshotChunk, SnapshotSummary, void> {
  const fd = fs.openSync(path, 'r');
  try {
    const cur = new FileCursor(fd);
    const headerBytes = Buffer.from(cur.take(HEADER_BYTES, 'header'));
    const header = decodeHeader(headerBytes);
    let pairs = 0;
    let lastKey: Buffer | null = null;
    // The trailer's first bytes were read as a chunk header (its tag marks the end).
    let trailerHead = Buffer.alloc(0);
    for (;;) {
      const chunkAt = cur.offset;
      const ch = cur.take(CHUNK_HEADER_BYTES, 'chunk header');
      const len = ch.readUInt32LE(0);
      if (len === TRAILER_TAG) { trailerHead = Buffer.from(ch); break; }
      const want = ch.readUInt32LE(4);
      if (len === 0 || len > MAX_CHUNK_BYTES) throw new SnapshotFormatError('BAD_CHUNK', `chunk of ${len} bytes at offset ${chunkAt}`);
      const payload = cur.take(len, 'chunk');
      if (crc32c(payload) !== want) throw new SnapshotFormatError('BAD_CRC', `chunk at offset ${chunkAt} fails its CRC`);
      const chunk = decodePairs(payload, chunkAt, lastKey);
      pairs += chunk.keys.length;
      // The last key must outlive the chunk's buffer for the order check.
      lastKey = Buffer.from(chunk.keys[chunk.keys.length - 1]!);
      yield chunk;
    }
    const bodyBytes = cur.offset - CHUNK_HEADER_BYTES;
    const t = Buffer.concat([trailerHead, cur.take(TRAILER_BYTES - CHUNK_HEADER_BYTES, 'trailer')]);
    const tPairs = t.readDoubleLE(4);
    const tBytes = t.readDoubleLE(12);
    const tHeaderCrc = t.readUInt32LE(20);
    if (!t.subarray(24, 32).equals(SENTINEL)) throw new SnapshotFormatError('BAD_TRAILER', 'trailer sentinel missing');
    if (tHeaderCrc !== crc32c(headerBytes)) throw new SnapshotFormatError('BAD_CRC', 'header fails its CRC');
    if (tPairs !== pairs) throw new SnapshotFormatError('BAD_TRAILER', `trailer counts ${tPairs} pairs, file holds ${pairs}`);
    if (tBytes !== bodyBytes) throw new SnapshotFormatError('BAD_TRAILER', `trailer counts ${tBytes} bytes, file holds ${bodyBytes}`);
    if (!cur.atEof()) throw new SnapshotFormatError('BAD_TRAILER', 'bytes after the trailer');
    return { header, pairs, bytes: bodyBytes + TRAILER_BYTES };
  } finally {
    fs.closeSync(fd);
  }
}

/** The pairs of one CRC-checked payload; keys ascending, and above lastKey. */
function decodePairs(payload: Buffer, chunkAt: number, lastKey: Buffer | null): SnapshotChunk {
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  const len = payload.length;
  let at = 0;
  while (at < len) {
    if (len - at < 4) throw new SnapshotFormatError('BAD_CHUNK', `pair header cut at offset ${chunkAt}`);
    const kl = payload.readUInt32LE(at);
    if (len - at - 4 < kl + 4) throw new SnapshotFormatError('BAD_CHUNK', `key runs past its chunk at offset ${chunkAt}`);
    const key = payload.subarray(at + 4, at + 4 + kl);
    const vl = payload.readUInt32LE(at + 4 + kl);
    if (len - at - 8 - kl < vl) throw new SnapshotFormatError('BAD_CHUNK', `value runs past its chunk at offset ${chunkAt}`);
    if (lastKey && Buffer.compare(lastKey, key) >= 0) throw new SnapshotFormatError('BAD_CHUNK', `keys out of order at offset ${chunkAt}`);
    lastKey = key;
    keys.push(key);
    values.push(payload.subarray(at + 8 + kl, at + 8 + kl + vl));
    at += 8 + kl + vl;
  }
  return { keys, values };
}

/** Reads a whole snapshot file (every check of readSnapshotChunks), handing each chunk to onChunk. */
export function readSnapshotFile(path: string, onChunk: ((c: SnapshotChunk) => void) | null): SnapshotSummary {
  const gen = readSnapshotChunks(path);
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
    onChunk?.(r.value);
  }
}

/** Checks a whole snapshot file (every chunk CRC, the header CRC, the trailer) without acting on it. */
export function verifySnapshotFile(path: string): SnapshotSummary {
  return readSnapshotFile(path, null);
}
