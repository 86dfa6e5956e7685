// Write-ahead log over a directory of preallocated segment files.
//
// Synchronous by design: it runs inside the WAL worker thread, which drains
// the ring, calls append() for a batch and then sync() once (group commit).
//
// Files:
//   ${seq:16 hex}-${firstIndex:16 hex}.wal   segments, seq consecutive from the oldest kept
//   next.wal.tmp                              the next segment, being preallocated
//
// A segment is preallocated by writing zeros (then fdatasync), so appends
// overwrite allocated blocks and fdatasync does not have to change file
// metadata (measured here: ~2x the syncs/s of appending to a growing file).
// The next segment is preallocated under the tmp name in steps while the
// current one fills past half, and renamed (then the directory fsync'd) when
// the current one is full, so a roll does not stall on 64 MiB of zeros.
//
// Crash safety: a record is durable once sync() returns. On open, the last
// segment is scanned up to the first invalid record; that record and every
// non-zero byte after it are zeroed and fdatasync'd, so a later append never
// sits in front of stale bytes. The tmp file only ever holds zeros, so a
// partial one is resumed. An invalid record in any other segment is
// corruption (WalCorruptError): those segments were complete and synced
// before the next one got any record.
//
// After an I/O error in append/sync the Wal refuses further use (WalFailedError):
// after a failed fdatasync the page cache state is unknown, so the member must
// restart and recover from disk.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeRecord, encodedSize, isEntryRecord, scanRecords, RecordType, type WalRecord } from './record.js';
import { fsyncDir } from '../../common/fsync-dir.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;
const TMP_NAME = 'next.wal.tmp';
const SEGMENT_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const ZEROS = Buffer.alloc(1024 * 1024);
/** Smallest preallocation step taken per append once the current segment is half full. */
const PREALLOC_STEP_BYTES = 256 * 1024;

export class WalCorruptError extends Error {
  readonly code = 'ETSD_WAL_CORRUPT';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`WAL corrupt: ${file} at offset ${offset}: ${reason}`);
    this.name = 'WalCorruptError';
  }
}

export class WalRecordTooLargeError extends RangeError {
  readonly code = 'ETSD_WAL_RECORD_TOO_LARGE';
  constructor(
    readonly size: number,
    readonly maxSize: number,
  ) {
    super(`WAL record of ${size} bytes (encoded) exceeds the segment size of ${maxSize} bytes`);
    this.name = 'WalRecordTooLargeError';
  }
}

export class WalFailedError extends Error {
  readonly code = 'ETSD_WAL_FAILED';
  constructor(override readonly cause: unknown) {
    super(`WAL unusable after an earlier I/O error: ${String((cause as Error)?.message ?? cause)}`);
    this.name = 'WalFailedError';
  }
}

export interface WalOptions {
  /** Size of each segment file (multiple of 8, at least 4096). Default 64 MiB. */
  segmentBytes?: number;
}

export interface WalRepair {
  segment: string;
  offset: number;
  reason: string;
}

export interface WalOpenResult {
  wal: Wal;
  records: WalRecord[];
  repair: WalRepair | null;
}

interface Segment {
  seq: number;
  firstIndex: number;
  name: string;
  /** Largest record index in the segment, -1 if it holds none. */
  maxIndex: number;
}

/**
 * Extend the file with zeros from `from` to `bytes` (written, not sparse).
 * The one place to swap in a native fallocate-and-zero later. No sync.
 */
export function preallocate(fd: number, bytes: number, from = 0): void {
  let at = from;
  while (at < bytes) at += fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, bytes - at), at);
}

export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}


function writeAll(fd: number, buf: Buffer, start: number, end: number, position: number): void {
  while (start < end) {
    const n = fs.writeSync(fd, buf, start, end - start, position);
    start += n;
    position += n;
  }
}

/** Offset of the last non-zero byte in buf[from, to), or -1. */
function lastNonZero(buf: Buffer, from: number, to: number): number {
  let hi = to;
  while (hi > from) {
    const lo = Math.max(from, hi - ZEROS.length);
    if (!buf.subarray(lo, hi).equals(ZEROS.subarray(0, hi - lo))) {
      for (let i = hi - 1; i >= lo; i--) if (buf[i] !== 0) return i;
    }
    hi = lo;
  }
  return -1;
}

export class Wal {
  /**
   * Open (or create) the WAL in `dir`. Returns every valid record in file
   * order; overwritten indexes are not reconciled (the caller does that).
   */
  static open(dir: string, opts: WalOptions = {}): WalOpenResult {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES || segmentBytes % 8 !== 0) {
      throw new RangeError(`segmentBytes must be a multiple of 8 and at least ${MIN_SEGMENT_BYTES}, got ${segmentBytes}`);
    }
    fs.mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    const records: WalRecord[] = [];
    let repair: WalRepair | null = null;
    let tailOffset = 0;
    let lastIndex = 0;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const file = path.join(dir, seg.name);
      const buf = fs.readFileSync(file);
      const scan = scanRecords(buf, 0, buf.length);
      const garbage = scan.stop === 'eof' ? -1 : lastNonZero(buf, scan.end, buf.length);
      const isLast = i === segments.length - 1;
      if (!isLast && garbage !== -1) {
        throw new WalCorruptError(seg.name, scan.end, scan.stop === 'zero' ? 'non-zero bytes after the end of the log' : `${scan.stop} record`);
      }
      // Keep only the valid prefix alive, not the whole segment buffer.
      const slab = Buffer.from(buf.subarray(0, scan.end));
      for (const r of scan.records) {
        const at = r.data.byteOffset - buf.byteOffset;
        records.push({ type: r.type, index: r.index, term: r.term, data: slab.subarray(at, at + r.data.length) });
        if (r.index > seg.maxIndex) seg.maxIndex = r.index;
        if (isEntryRecord(r.type)) lastIndex = r.index;
      }
      if (isLast) {
        tailOffset = (scan.end + 7) & ~7; // a file cut inside padding ends unaligned
        if (garbage !== -1) {
          const reason = scan.stop === 'zero' ? 'non-zero bytes after the end of the log' : `${scan.stop} record`;
          repair = { segment: seg.name, offset: scan.end, reason };
          zeroRange(file, scan.end, Math.min(buf.length, (garbage + 8) & ~7));
        }
        if (buf.length < segmentBytes) extendSegment(file, buf.length, segmentBytes);
      }
    }
    if (segments.length === 0) {
      const seg: Segment = { seq: 0, firstIndex: 0, name: segmentName(0, 0), maxIndex: -1 };
      const fd = fs.openSync(path.join(dir, seg.name), 'wx+');
      try {
        preallocate(fd, segmentBytes);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fsyncDir(dir);
      segments.push(seg);
    }
    const wal = new Wal(dir, segmentBytes, segments, tailOffset, lastIndex);
    return { wal, records, repair };
  }

  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly segments: Segment[];
  private fd: number;
  private capacity: number;
  private offset: number;
  private dirty = false;
  private lastIdx: number;
  /** fds of rolled-away segments written since the last sync. */
  private pendingSync: number[] = [];
  /** Next segment under TMP_NAME: its fd and how many bytes are zeroed, or null. */
  private next: { fd: number; done: number; synced: boolean } | null = null;
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private failed: unknown = null;
  private closed = false;

  private constructor(dir: string, segmentBytes: number, segments: Segment[], offset: number, lastIndex: number) {
    this.dir = dir;
    this.segmentBytes = segmentBytes;
    this.segments = segments;
    const cur = segments[segments.length - 1]!;
    this.fd = fs.openSync(path.join(dir, cur.name), 'r+');
    this.capacity = fs.fstatSync(this.fd).size;
    this.offset = offset;
    this.lastIdx = lastIndex;
    this.openTmp();
  }

  /** Index of the last Entry record written (0 if none). */
  get lastIndex(): number {
    return this.lastIdx;
  }

  /** Segment file names, oldest first (the last is the one being written). */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /**
   * Append records in order: encoded once into a reusable buffer and written
   * with one write per segment touched. Not durable until sync().
   */
  append(records: WalRecord[]): void {
    this.usable();
    if (records.length === 0) return;
    let total = 0;
    for (const r of records) {
      const size = encodedSize(r);
      if (size > this.segmentBytes) throw new WalRecordTooLargeError(size, this.segmentBytes);
      total += size;
    }
    if (this.scratch.length < total) this.scratch = Buffer.allocUnsafe(Math.max(total, this.scratch.length * 2));
    const buf = this.scratch;
    let end = 0;
    for (const r of records) end = encodeRecord(r, buf, end); // validates every record before any write
    try {
      let i = 0;
      let start = 0; // byte offset of records[i] in buf
      while (i < records.length) {
        // Take the longest run of records from i that fits the current segment.
        let j = i;
        let stop = start;
        const room = this.capacity - this.offset;
        while (j < records.length && stop - start + encodedSize(records[j]!) <= room) stop += encodedSize(records[j++]!);
        if (j === i) {
          this.roll(records[i]!.index);
          continue;
        }
        writeAll(this.fd, buf, start, stop, this.offset);
        this.offset += stop - start;
        this.dirty = true;
        const seg = this.segments[this.segments.length - 1]!;
        for (; i < j; i++) {
          const r = records[i]!;
          if (r.index > seg.maxIndex) seg.maxIndex = r.index;
          if (isEntryRecord(r.type)) this.lastIdx = r.index;
        }
        start = stop;
      }
      if (this.offset * 2 >= this.capacity) this.preallocateStep(Math.max(PREALLOC_STEP_BYTES, 2 * total));
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** One fdatasync per segment written since the last sync. */
  sync(): void {
    this.usable();
    try {
      for (const fd of this.pendingSync) {
        fs.fdatasyncSync(fd);
        fs.closeSync(fd);
      }
      this.pendingSync = [];
      if (this.dirty) {
        fs.fdatasyncSync(this.fd);
        this.dirty = false;
      }
    } catch (err) {
      throw this.fail(err);
    }
  }

  /** Finish preallocating the next segment now (e.g. when the worker is idle). */
  preallocateNext(): void {
    this.usable();
    try {
      this.preallocateStep(Infinity);
    } catch (err) {
      throw this.fail(err);
    }
  }

  /**
   * Delete the oldest segments whose records all have index < `index`
   * (stopping at the first that does not qualify); the current segment stays.
   */
  releaseBefore(index: number): void {
    this.usable();
    let removed = 0;
    while (this.segments.length > 1 && this.segments[0]!.maxIndex < index) {
      const seg = this.segments.shift()!;
      fs.unlinkSync(path.join(this.dir, seg.name));
      removed++;
    }
    if (removed > 0) fsyncDir(this.dir);
  }

  /** Sync what was appended and close every file. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.failed === null) this.sync();
    } finally {
      this.closed = true;
      for (const fd of this.pendingSync) fs.closeSync(fd);
      this.pendingSync = [];
      fs.closeSync(this.fd);
      if (this.next !== null) fs.closeSync(this.next.fd);
      this.next = null;
    }
  }

  // ----------------------------------------------------------------- private

  private usable(): void {
    if (this.closed) throw new Error('WAL is closed');
    if (this.failed !== null) throw new WalFailedError(this.failed);
  }

  /** Only I/O runs inside the guarded sections, so any error there is fatal. */
  private fail(err: unknown): unknown {
    this.failed = err;
    return err;
  }

  /** Resume a tmp file left by an earlier run (it holds only zeros). */
  private openTmp(): void {
    const tmp = path.join(this.dir, TMP_NAME);
    let size: number;
    try {
      size = fs.statSync(tmp).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // none left behind
      throw err;
    }
    if (size > this.segmentBytes) {
      fs.unlinkSync(tmp);
      return;
    }
    this.next = { fd: fs.openSync(tmp, 'r+'), done: size, synced: false };
  }

  /** Zero up to `budget` more bytes of the next segment; fdatasync each step. */
  private preallocateStep(budget: number): void {
    if (this.next === null) {
      this.next = { fd: fs.openSync(path.join(this.dir, TMP_NAME), 'w+'), done: 0, synced: false };
    }
    const next = this.next;
    if (next.done >= this.segmentBytes && next.synced) return;
    const to = Math.min(this.segmentBytes, next.done + budget);
    preallocate(next.fd, to, next.done);
    next.done = to;
    fs.fdatasyncSync(next.fd);
    next.synced = true;
  }

  /** Make the preallocated next segment current; its first record has `firstIndex`. */
  private roll(firstIndex: number): void {
    this.preallocateStep(Infinity);
    const next = this.next!;
    const cur = this.segments[this.segments.length - 1]!;
    const seg: Segment = { seq: cur.seq + 1, firstIndex, name: segmentName(cur.seq + 1, firstIndex), maxIndex: -1 };
    fs.renameSync(path.join(this.dir, TMP_NAME), path.join(this.dir, seg.name));
    fsyncDir(this.dir);
    if (this.dirty) this.pendingSync.push(this.fd);
    else fs.closeSync(this.fd);
    this.segments.push(seg);
    this.fd = next.fd;
    this.next = null;
    this.capacity = this.segmentBytes;
    this.offset = 0;
    this.dirty = false;
  }
}

function listSegments(dir: string): Segment[] {
  const segments: Segment[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = SEGMENT_RE.exec(name);
    if (m === null) continue;
    const seq = parseInt(m[1]!, 16);
    const firstIndex = parseInt(m[2]!, 16);
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) throw new WalCorruptError(name, 0, 'segment name out of range');
    segments.push({ seq, firstIndex, name, maxIndex: -1 });
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
      throw new WalCorruptError(segments[i]!.name, 0, `segment sequence gap after ${segments[i - 1]!.name}`);
    }
  }
  return segments;
}

/** Zero file[from, to) and fdatasync. */
function zeroRange(file: string, from: number, to: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    let at = from;
    while (at < to) at += fs.writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, to - at), at);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Grow a short segment (e.g. cut by a crash or a smaller old segmentBytes) to full size with zeros. */
function extendSegment(file: string, size: number, segmentBytes: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    preallocate(fd, segmentBytes, size);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
