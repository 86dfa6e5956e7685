// Reads the WAL etcd 3.4 leaves in <data-dir>/member/wal (wal/decoder.go,
// wal/wal.go ReadAll), read-only: etsd imports it when it replaces an etcd
// binary over the same data dir, and never writes etcd's files.
//
//   files    %016x-%016x.wal (seq-firstIndex), read in seq order; each is
//            preallocated (64 MiB) and ends in zeros after its last record
//   frame    u64 LE length: the low 56 bits are the record's bytes; a set top
//            bit means the low 3 bits of the top byte are padding bytes after
//            it (to 8-byte alignment)
//   record   walpb.Record { int64 type = 1; uint32 crc = 2; bytes data = 3 }
//            crc = CRC-32C rolled over every record's data since the last crc
//            record (a crc record starts each file and carries the chain)
//   types    1 metadata (etcdserverpb.Metadata { NodeID = 1, ClusterID = 2 }),
//            2 entry (raftpb.Entry), 3 state (raftpb.HardState), 4 crc,
//            5 snapshot (walpb.Snapshot { index = 1, term = 2 })
//
// A later entry for an index replaces the log from that index on (raft
// truncated a conflicting suffix). A torn or zero record ends the last file
// (what a crash mid-write leaves; etcd repairs the same way); anywhere else it
// is corruption.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '../../native/index.js';
import { ProtoReader, WIRE_LDELIM, WIRE_VARINT } from '../../proto/wire.js';

const WAL_NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const FRAME_BYTES = 8;
/** etcd's maxWALEntrySizeLimit. */
const MAX_RECORD_BYTES = 10 * 1024 * 1024;

export const EtcdWalRecord = { Metadata: 1, Entry: 2, State: 3, Crc: 4, Snapshot: 5 } as const;
/** raftpb.EntryType. */
export const EtcdEntryType = { Normal: 0, ConfChange: 1 } as const;

export interface EtcdEntry { index: number; term: number; type: number; data: Buffer }
export interface EtcdHardState { term: number; vote: bigint; commit: number }

export interface EtcdWal {
  nodeId: bigint;
  clusterId: bigint;
  hardState: EtcdHardState;
  /** Every entry the WAL holds, in index order without gaps. */
  entries: EtcdEntry[];
  /** The snapshot markers seen (index, term): where a log cut by a raft snapshot starts. */
  snapshots: { index: number; term: number }[];
  /** Set when the last file ended in a torn record (a crash mid-write): what was dropped. */
  tornTail: string | null;
}

export class EtcdWalError extends Error {
  override name = 'EtcdWalError';
}

/** True when `dir` holds etcd WAL files. */
export function hasEtcdWal(dir: string): boolean {
  try {
    return fs.readdirSync(dir).some((n) => WAL_NAME_RE.test(n));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

/** etcd's WAL file names in seq order (checked consecutive, as etcd's readWALNames/isValidSeq). */
function walNames(dir: string): string[] {
  const names = fs.readdirSync(dir).filter((n) => WAL_NAME_RE.test(n)).sort();
  if (names.length === 0) throw new EtcdWalError(`no WAL files in ${dir}`);
  for (let i = 1; i < names.length; i++) {
    const prev = BigInt('0x' + WAL_NAME_RE.exec(names[i - 1]!)![1]!);
    const cur = BigInt('0x' + WAL_NAME_RE.exec(names[i]!)![1]!);
    if (cur !== prev + 1n) throw new EtcdWalError(`WAL file sequence gap: ${names[i - 1]} then ${names[i]}`);
  }
  return names;
}

const u64 = (r: ProtoReader): bigint => r.readVarintBig();
const safe = (v: bigint, what: string): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EtcdWalError(`${what} ${v} is beyond what etsd indexes`);
  return Number(v);
};

interface RawRecord { type: number; crc: number; data: Buffer }

function decodeRecord(b: Buffer): RawRecord {
  const r = new ProtoReader(b);
  let type = 0;
  let crc = 0;
  let data: Buffer = Buffer.alloc(0);
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (1 << 3 | WIRE_VARINT)) type = Number(BigInt.asIntN(64, u64(r)));
    else if (t === (2 << 3 | WIRE_VARINT)) crc = Number(u64(r) & 0xffffffffn);
    else if (t === (3 << 3 | WIRE_LDELIM)) data = r.readBytes();
    else r.skipField(t & 7);
  }
  return { type, crc, data };
}

export function decodeEntry(b: Buffer): EtcdEntry {
  const r = new ProtoReader(b);
  const e: EtcdEntry = { index: 0, term: 0, type: 0, data: Buffer.alloc(0) as Buffer };
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (1 << 3 | WIRE_VARINT)) e.type = Number(u64(r));
    else if (t === (2 << 3 | WIRE_VARINT)) e.term = safe(u64(r), 'term');
    else if (t === (3 << 3 | WIRE_VARINT)) e.index = safe(u64(r), 'index');
    else if (t === (4 << 3 | WIRE_LDELIM)) e.data = r.readBytes();
    else r.skipField(t & 7);
  }
  return e;
}

function decodeHardState(b: Buffer): EtcdHardState {
  const r = new ProtoReader(b);
  const hs: EtcdHardState = { term: 0, vote: 0n, commit: 0 };
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (1 << 3 | WIRE_VARINT)) hs.term = safe(u64(r), 'term');
    else if (t === (2 << 3 | WIRE_VARINT)) hs.vote = u64(r);
    else if (t === (3 << 3 | WIRE_VARINT)) hs.commit = safe(u64(r), 'commit');
    else r.skipField(t & 7);
  }
  return hs;
}

/** Two varint fields 1 and 2 (Metadata's NodeID/ClusterID, walpb.Snapshot's index/term). */
function decodePair(b: Buffer): [bigint, bigint] {
  const r = new ProtoReader(b);
  let a = 0n;
  let c = 0n;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t === (1 << 3 | WIRE_VARINT)) a = u64(r);
    else if (t === (2 << 3 | WIRE_VARINT)) c = u64(r);
    else r.skipField(t & 7);
  }
  return [a, c];
}

/** Reads every WAL file of `dir` (etcd's ReadAll from the start of the oldest file kept). */
export function readEtcdWal(dir: string): EtcdWal {
  const names = walNames(dir);
  let crc = 0;
  let metadata: Buffer | null = null;
  let hardState: EtcdHardState = { term: 0, vote: 0n, commit: 0 };
  const entries: EtcdEntry[] = [];
  const snapshots: { index: number; term: number }[] = [];
  let tornTail: string | null = null;

  for (let f = 0; f < names.length; f++) {
    const name = names[f]!;
    const buf = fs.readFileSync(path.join(dir, name));
    const isLast = f === names.length - 1;
    let at = 0;
    const stop = (why: string): void => {
      if (!isLast) throw new EtcdWalError(`${name} at offset ${at}: ${why}`);
      if (buf.subarray(at).some((x) => x !== 0)) tornTail = `${name} at offset ${at}: ${why}`;
    };
    for (;;) {
      if (buf.length - at < FRAME_BYTES) { if (at < buf.length) stop('torn frame'); break; }
      const frame = buf.readBigUInt64LE(at);
      // The preallocated zero tail: the end of this file (etcd's decoder moves to the next one).
      if (frame === 0n) {
        if (isLast && buf.subarray(at).some((x) => x !== 0)) tornTail = `${name} at offset ${at}: bytes after the end of the log`;
        break;
      }
      const recBytes = Number(frame & 0x00ffffffffffffffn);
      const padBytes = (frame >> 63n) === 1n ? Number((frame >> 56n) & 7n) : 0;
      if (recBytes >= MAX_RECORD_BYTES - padBytes) { stop(`record of ${recBytes} bytes`); break; }
      const body = at + FRAME_BYTES;
      if (body + recBytes + padBytes > buf.length) { stop('torn record'); break; }
      let rec: RawRecord;
      try {
        rec = decodeRecord(buf.subarray(body, body + recBytes));
      } catch (err) {
        stop(`undecodable record (${(err as Error).message})`);
        break;
      }
      if (rec.type !== EtcdWalRecord.Crc) {
        crc = crc32c(rec.data, crc);
        if (rec.crc !== crc) { stop(`crc mismatch: record ${rec.crc.toString(16)}, rolled ${crc.toString(16)}`); break; }
      }
      switch (rec.type) {
        case EtcdWalRecord.Crc:
          // A new file carries the chain; a fresh reader (crc still 0) takes it as is.
          if (crc !== 0 && rec.crc !== crc) throw new EtcdWalError(`${name}: crc record ${rec.crc.toString(16)} does not continue the chain ${crc.toString(16)}`);
          crc = rec.crc;
          break;
        case EtcdWalRecord.Metadata:
          if (metadata !== null && !metadata.equals(rec.data)) throw new EtcdWalError(`${name}: metadata conflicts with an earlier file's`);
          metadata = rec.data;
          break;
        case EtcdWalRecord.State:
          hardState = decodeHardState(rec.data);
          break;
        case EtcdWalRecord.Snapshot: {
          const [index, term] = decodePair(rec.data);
          snapshots.push({ index: safe(index, 'snapshot index'), term: safe(term, 'snapshot term') });
          break;
        }
        case EtcdWalRecord.Entry: {
          const e = decodeEntry(rec.data);
          const first = entries.length > 0 ? entries[0]!.index : e.index;
          const pos = e.index - first;
          if (pos < 0) entries.length = 0;
          else if (pos < entries.length) entries.length = pos;
          else if (pos > entries.length) throw new EtcdWalError(`${name}: entry ${e.index} after ${entries[entries.length - 1]!.index}`);
          entries.push(e);
          break;
        }
        default:
          throw new EtcdWalError(`${name}: unexpected record type ${rec.type}`);
      }
      at = body + recBytes + padBytes;
    }
  }
  if (metadata === null) throw new EtcdWalError(`no metadata record in ${dir}`);
  const [nodeId, clusterId] = decodePair(metadata);
  return { nodeId, clusterId, hardState, entries, snapshots, tornTail };
}
