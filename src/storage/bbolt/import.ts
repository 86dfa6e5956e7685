// An etcd 3.4 snapshot (a bbolt file, maybe with etcd's sha256 trailer) ->
// etsd's MVCC records in an empty RocksDB: the body of `etsdutl snapshot
// restore`. What etcd itself restores is what comes across: the key bucket
// (every revision, tombstones, create/mod revision, version, lease), the
// leases with their granted TTL and their attached keys, the current
// revision and the compaction (a compaction etcd had scheduled but not
// finished is finished by etsd's store at its first open, as etcd does),
// and the auth store: enabled flag, revision, users and roles (auth-buckets.ts).
// Membership, raft indexes and etcd's alarms are not taken: the restored
// member starts a new cluster from its flags, as after `etcdctl snapshot restore`.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { RocksLevel } from '@nxtedition/rocksdb';
import { decodeKeyValue } from '../../proto/kv-codec.js';
import { attachKey, byRevKey, historyKey, latestKey, leaseKey } from '../mvcc/keys.js';
import { encodeVersion } from '../mvcc/record.js';
import { MvccWriter } from '../mvcc/writer.js';
import { ReusableBatch } from '../write-batch.js';
import { BboltReader, type BucketRef } from './reader.js';
import { encodeAuthState } from '../../auth/state-record.js';
import { readAuthBuckets } from './auth-buckets.js';
import { B, META_FINISHED_COMPACT, META_SCHEDULED_COMPACT, decodeLease, decodeRevBytes } from './etcd-schema.js';

const SHA256_BYTES = 32;
/** The raft index and term an imported state counts as applied at. */
export const IMPORTED_INDEX = 1;
export const IMPORTED_TERM = 1;
/** Bytes (keys + values) per WriteBatch. */
const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * etcd's restore check: a file whose size is a multiple of 512 plus 32 ends
 * with the sha256 of what precedes it, and it must match. Without a trailer
 * the restore needs skipHashCheck (a db file copied from a data dir).
 */
export function checkSnapshotHash(path: string, skipHashCheck: boolean): void {
  const size = fs.statSync(path).size;
  const hasHash = size % 512 === SHA256_BYTES;
  if (!hasHash) {
    if (!skipHashCheck) throw new Error('snapshot missing hash but --skip-hash-check=false');
    return;
  }
  if (skipHashCheck) return;
  const h = createHash('sha256');
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; pos < size - SHA256_BYTES;) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - SHA256_BYTES - pos), pos);
      if (n === 0) throw new Error(`snapshot file ends at ${pos}`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
    const want = Buffer.alloc(SHA256_BYTES);
    fs.readSync(fd, want, 0, SHA256_BYTES, size - SHA256_BYTES);
    const got = h.digest();
    if (!got.equals(want)) throw new Error(`expected sha256 ${want.toString('hex')}, got ${got.toString('hex')}`);
  } finally {
    fs.closeSync(fd);
  }
}

export interface ImportInfo { revision: number; compactRevision: number; revisions: number; leases: number; attached: number; users: number; roles: number; authEnabled: boolean }

class Batcher {
  private readonly batch: ReusableBatch;
  constructor(db: RocksLevel) { this.batch = new ReusableBatch(db); }
  async put(k: Buffer, v: Buffer): Promise<void> {
    this.batch.put(k, v);
    if (this.batch.byteLength >= BATCH_BYTES) await this.flush();
  }
  async flush(): Promise<void> {
    this.batch.write(false);
  }
}

function bucketOf(r: BboltReader, name: Buffer): BucketRef | null { return r.bucket(r.root, name); }

/**
 * Writes the snapshot's state into `db`, which must be empty; syncs before returning.
 * `applied`: the raft position the state is at (an etcd data dir's consistent index,
 * when etsd takes it over); a restored snapshot starts a new log at 0.
 */
export async function importEtcdDb(path: string, db: RocksLevel, applied = { index: IMPORTED_INDEX, term: IMPORTED_TERM }): Promise<ImportInfo> {
  const r = BboltReader.open(path);
  try {
    const keyB = bucketOf(r, B.key);
    if (keyB === null) throw new Error('not an etcd snapshot: no key bucket');
    const out = new Batcher(db);

    let maxRev = 1;
    let revisions = 0;
    // Each key's lease as of its newest version so far (keys without one are absent): what the
    // lessor attaches, found on the way instead of reading every latest record (values too) back.
    const leaseOfKey = new Map<string, { key: Buffer; lease: bigint }>();
    for (const e of r.entries(keyB)) {
      const rev = decodeRevBytes(e.key);
      const kv = decodeKeyValue(e.value);
      const v = rev.tombstone
        ? { tombstone: true, createRevision: 0, modRevision: rev.main, version: 0, lease: 0n, sub: rev.sub, value: Buffer.alloc(0) }
        : { tombstone: false, createRevision: kv.createRevision, modRevision: rev.main, version: kv.version, lease: kv.lease, sub: rev.sub, value: kv.value };
      if (!rev.tombstone && kv.modRevision !== rev.main) throw new Error(`revision ${rev.main}_${rev.sub} holds a KeyValue with mod revision ${kv.modRevision}`);
      const enc = encodeVersion(v);
      await out.put(historyKey(kv.key, rev.main), enc);
      await out.put(byRevKey(rev.main, rev.sub), kv.key);
      // Revision order: the last write of a key's latest record is its newest version.
      await out.put(latestKey(kv.key), enc);
      if (!v.tombstone && v.lease !== 0n) leaseOfKey.set(kv.key.toString('latin1'), { key: Buffer.from(kv.key), lease: v.lease });
      else if (leaseOfKey.size > 0) leaseOfKey.delete(kv.key.toString('latin1'));
      maxRev = Math.max(maxRev, rev.main);
      revisions++;
    }

    const leaseIds = new Set<bigint>();
    const leaseB = bucketOf(r, B.lease);
    for (const e of leaseB === null ? [] : r.entries(leaseB)) {
      const l = decodeLease(e.value);
      const ttl = Buffer.allocUnsafe(8);
      ttl.writeBigInt64BE(BigInt(l.ttl));
      await out.put(leaseKey(l.id), ttl);
      leaseIds.add(l.id);
    }
    await out.flush();

    // Keys attached to a lease: each live key's latest version names it (etcd's lessor recovery).
    let attached = 0;
    for (const { key, lease } of leaseOfKey.values()) {
      if (!leaseIds.has(lease)) continue;
      await out.put(attachKey(lease, key), Buffer.alloc(0));
      attached++;
    }
    await out.flush();

    const metaB = bucketOf(r, B.meta);
    const metaRev = (name: Buffer): number => {
      if (metaB === null) return 0;
      for (const e of r.entries(metaB)) if (e.key.equals(name)) return decodeRevBytes(e.value).main;
      return 0;
    };
    const finished = metaRev(META_FINISHED_COMPACT);
    const scheduled = Math.max(finished, metaRev(META_SCHEDULED_COMPACT));
    const w = new MvccWriter(db);
    // etcd: the current revision is the newest in the key bucket, and never below the compaction.
    w.state.rev = Math.max(maxRev, scheduled);
    // By default the imported state stands for raft index 1 of term 1 (etcd's restore also starts
    // its log from a snapshot): the log begins after it, so a member added later gets a snapshot of
    // this state instead of an empty log replay. A takeover passes etcd's consistent index instead.
    w.markApplied(applied.index, applied.term);
    if (scheduled > 0) w.setCompactRev(scheduled);
    const auth = readAuthBuckets(r);
    w.setAuth(encodeAuthState(auth));
    await w.flush(true);
    if (finished > 0) await w.markCompactionDone(finished);
    return {
      revision: w.state.rev, compactRevision: scheduled, revisions, leases: leaseIds.size, attached,
      users: auth.users.length, roles: auth.roles.length, authEnabled: auth.enabled,
    };
  } finally {
    r.close();
  }
}
