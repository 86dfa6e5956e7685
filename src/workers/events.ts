// The watch event stream from the apply worker to the shards. One record per
// revision (or several for a huge revision, the last one flagged): 
//   u8 last | f64 rev | u32 n | n x (u32 keyLen | key | u32 evLen | mvccpb.Event bytes)
// and, after a snapshot replaced the whole store: u8 STORAGE_RESET | f64 rev.

import type { Ring } from './ring/ring.js';
import { writeBlocking } from './ring/write-blocking.js';

export interface WireEvent { key: Buffer; event: Buffer; isCreate: boolean; isDelete: boolean; modRevision: number }

const PIECE_BYTES = 1024 * 1024;

/** Byte 0 of a record telling the shards that storage was replaced up to rev (no events follow). */
const STORAGE_RESET = 2;

/** Revisions jumped past what the live stream carried: every watcher must catch up from storage. */
export function writeStorageReset(ring: Ring, rev: number): void {
  const out = Buffer.allocUnsafe(9);
  out[0] = STORAGE_RESET;
  out.writeDoubleLE(rev, 1);
  writeBlocking(ring, [out]);
}

/** The revision of a storage-reset record, or null for an events record. */
export function readStorageReset(view: Uint8Array): number | null {
  if (view[0] !== STORAGE_RESET) return null;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).readDoubleLE(1);
}

/** Writes the events of one revision, split into ring-sized records. */
export function writeRevisionEvents(ring: Ring, rev: number, events: WireEvent[]): void {
  let i = 0;
  while (i < events.length) {
    let size = 13;
    let j = i;
    while (j < events.length && (j === i || size + 10 + events[j]!.key.length + events[j]!.event.length <= PIECE_BYTES)) {
      size += 10 + events[j]!.key.length + events[j]!.event.length;
      j++;
    }
    const out = Buffer.allocUnsafe(size);
    out[0] = j === events.length ? 1 : 0;
    out.writeDoubleLE(rev, 1);
    out.writeUInt32LE(j - i, 9);
    let at = 13;
    for (let k = i; k < j; k++) {
      const e = events[k]!;
      out.writeUInt32LE(e.key.length, at); at += 4;
      e.key.copy(out, at); at += e.key.length;
      out[at++] = (e.isCreate ? 1 : 0) | (e.isDelete ? 2 : 0);
      out.writeUInt32LE(e.event.length, at); at += 4;
      e.event.copy(out, at); at += e.event.length;
    }
    writeBlocking(ring, [out]);
    i = j;
  }
}

/** Reads one record; buffers are copied out of the ring. */
export function readRevisionEvents(view: Uint8Array): { last: boolean; rev: number; events: WireEvent[] } {
  const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  const rev = b.readDoubleLE(1);
  const n = b.readUInt32LE(9);
  const events: WireEvent[] = [];
  let at = 13;
  for (let k = 0; k < n; k++) {
    const kl = b.readUInt32LE(at); at += 4;
    const key = Buffer.from(b.subarray(at, at + kl)); at += kl;
    const flags = b[at++]!;
    const el = b.readUInt32LE(at); at += 4;
    const event = Buffer.from(b.subarray(at, at + el)); at += el;
    events.push({ key, event, isCreate: (flags & 1) !== 0, isDelete: (flags & 2) !== 0, modRevision: rev });
  }
  return { last: b[0] === 1, rev, events };
}
