// After a simulated power cut (every member killed -9), puts each member's
// files back as a disk would hold them: the journal the shim (shim.c) wrote
// is read and every change not covered by a completed fsync/fdatasync of its
// file is undone, newest first.
//
// The model, roughly ext4 data=ordered (its default) after power loss:
// - a file's contents are durable up to its last fsync/fdatasync that
//   returned; everything written, truncated or allocated after that sync
//   began is lost: appends are cut off (the file goes back to its synced
//   size), overwrites inside the synced size get the old bytes back, a file
//   created and never synced is left empty;
// - sync(2)/syncfs(2) make every file durable;
// - sync_file_range(2) makes nothing durable (no device cache flush);
// - directory entries (create, rename, unlink, link) are durable at once:
//   the simplification. Real ext4 can lose a rename or a create not yet
//   committed by its journal (up to 5 s) unless the directory or a file on
//   the same filesystem was fsync'd; so a missing directory fsync goes
//   unnoticed here. Contents follow the inode, so data written under a temp
//   name and renamed is judged by the inode's syncs;
// - what a process wrote before its current start is taken as durable: one
//   journal covers one incarnation of a member, and the cut comes in it;
// - no torn sectors: an unsynced write is lost whole or (when synced) kept.
// Writes the shim cannot see (mmap, io_uring, raw syscalls) are kept: the
// model can only under-report loss there, never invent it.

import { closeSync, existsSync, ftruncateSync, lstatSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const R_OPEN = 1, R_MOD = 2, R_SYNC_BEGIN = 3, R_SYNC_END = 4, R_SYNCALL_BEGIN = 5, R_SYNCALL_END = 6;
const HEADER = 48;

interface Mod { ordinal: number; sizeBefore: bigint; offset: bigint; old: Buffer }
interface FileLog { path: string; mods: Mod[] }

export interface RevertReport {
  /** Files put back (contents changed by the revert). */
  files: number;
  /** Changes undone (writes, truncations, allocations), and bytes cut off the ends of files. */
  undone: number;
  bytesCut: number;
  /** Bytes given back their old contents (unsynced overwrites, e.g. of the WAL's preallocated zeros). */
  bytesRestored: number;
  /** Completed fsync/fdatasync calls seen in the journal. */
  syncs: number;
  /** Files (by their path at open) whose changes were undone, with how many. */
  detail: string[];
}

/** The journal's records in order; a torn last record (the kill came mid-append) is dropped. */
function* records(buf: Buffer): Generator<{ type: number; key: string; a: bigint; b: bigint; c: bigint; payload: Buffer }> {
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = buf.readUInt32LE(at);
    if (len < HEADER || at + len > buf.length) return;
    yield {
      type: buf.readUInt32LE(at + 4),
      key: `${buf.readBigUInt64LE(at + 8)}:${buf.readBigUInt64LE(at + 16)}`,
      a: buf.readBigUInt64LE(at + 24), b: buf.readBigUInt64LE(at + 32), c: buf.readBigUInt64LE(at + 40),
      payload: buf.subarray(at + HEADER, at + len),
    };
    at += len;
  }
}

/** The unsynced changes per inode ("dev:ino") in a journal. */
export function unsynced(journal: Buffer): { files: Map<string, FileLog>; syncs: number } {
  const files = new Map<string, FileLog>();
  const begun = new Map<bigint, { key: string | null; before: number }>();
  let ordinal = 0;
  let syncs = 0;
  const file = (key: string): FileLog => {
    let f = files.get(key);
    if (!f) { f = { path: '?', mods: [] }; files.set(key, f); }
    return f;
  };
  for (const r of records(journal)) {
    switch (r.type) {
      case R_OPEN: {
        const f = file(r.key);
        // A new file on a reused inode number: what was recorded for the old one is void.
        if (r.a === 1n) f.mods = [];
        f.path = r.payload.toString('utf8');
        break;
      }
      case R_MOD: file(r.key).mods.push({ ordinal: ordinal++, sizeBefore: r.a, offset: r.b, old: Buffer.from(r.payload.subarray(0, Number(r.c))) }); break;
      case R_SYNC_BEGIN: begun.set(r.a, { key: r.key, before: ordinal }); break;
      case R_SYNCALL_BEGIN: begun.set(r.a, { key: null, before: ordinal }); break;
      case R_SYNC_END: case R_SYNCALL_END: {
        const s = begun.get(r.a);
        if (!s) break;
        begun.delete(r.a);
        syncs++;
        for (const [key, f] of files) if (s.key === null || s.key === key) f.mods = f.mods.filter((m) => m.ordinal >= s.before);
        break;
      }
      default: throw new Error(`power-cut journal: unknown record type ${r.type}`);
    }
  }
  return { files, syncs };
}

/** Every regular file under dir by "dev:ino" (hard links: the first path found). */
function inodes(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p, { bigint: true });
    if (st.isDirectory()) inodes(p, out);
    else if (st.isFile() && !out.has(`${st.dev}:${st.ino}`)) out.set(`${st.dev}:${st.ino}`, p);
  }
  return out;
}

/** Undoes, in `dir`, what the journals (one per process that ran there) record as never synced. */
export function revertUnsynced(dir: string, journals: string[]): RevertReport {
  const report: RevertReport = { files: 0, undone: 0, bytesCut: 0, bytesRestored: 0, syncs: 0, detail: [] };
  const byInode = existsSync(dir) ? inodes(dir) : new Map<string, string>();
  for (const j of journals) {
    if (!existsSync(j)) continue;
    const { files, syncs } = unsynced(readFileSync(j));
    report.syncs += syncs;
    for (const [key, f] of files) {
      if (f.mods.length === 0) continue;
      const path = byInode.get(key);
      if (!path) continue; // unlinked since: nothing left to revert
      const fd = openSync(path, 'r+');
      try {
        const sizeNow = BigInt(lstatSync(path).size);
        for (let i = f.mods.length - 1; i >= 0; i--) {
          const m = f.mods[i]!;
          if (m.old.length > 0) writeSync(fd, m.old, 0, m.old.length, Number(m.offset));
          report.bytesRestored += m.old.length;
          ftruncateSync(fd, Number(m.sizeBefore));
        }
        const sizeThen = f.mods[0]!.sizeBefore;
        if (sizeNow > sizeThen) report.bytesCut += Number(sizeNow - sizeThen);
      } finally { closeSync(fd); }
      report.files++;
      report.undone += f.mods.length;
      report.detail.push(`${path.slice(dir.length + 1)}: ${f.mods.length}`);
    }
  }
  return report;
}
