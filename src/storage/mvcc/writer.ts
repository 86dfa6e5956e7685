import type { RocksLevel } from '@nxtedition/rocksdb';
import { ReusableBatch } from '../write-batch.js';
import {
  BY_REV_KEY_BYTES, attachKey, historyKeyLength, leaseKey, metaKey, writeByRevKeyAt, writeHistoryKeyAt, writeLatestKeyAt,
} from './keys.js';
import { DbReader, type LatestSource } from './reader.js';
import { RECORD_HEADER, writeVersionAt, type StoredVersion } from './record.js';

const EMPTY = Buffer.alloc(0);

/**
 * The batch's lanes (write-batch.ts): 'l' records (and leases, attachments,
 * meta), then 'k', then 'r', each family together. RocksDB inserts a batch's
 * records into the memtable's skiplist in batch order and starts each search
 * from where the previous insert ended: a put's three records interleaved sent
 * every search across the key space from the top, where the by-revision
 * records, all past the previous batch's, now land next to each other (a batch
 * of 64 puts: RocksDB's write 5.1-5.8 -> 4.4-4.8 us per put; bench/writer.ts
 * times this path).
 */
const LANE_LATEST = 0;
const LANE_HISTORY = 1;
const LANE_BY_REV = 2;
const LANES = 3;

interface KeyMeta { tombstone: boolean; createRevision: number; version: number; lease: bigint }
const TOMBSTONE_META: KeyMeta = { tombstone: true, createRevision: 0, version: 0, lease: 0n };
/** Just the metadata: a cached StoredVersion would keep its value (and the buffer it views) alive. */
const metaOf = (v: StoredVersion | null): KeyMeta =>
  (v === null || v.tombstone ? TOMBSTONE_META : { tombstone: false, createRevision: v.createRevision, version: v.version, lease: v.lease });
const META_APPLIED = metaKey('applied_index');
const META_REV = metaKey('current_rev');
const META_COMPACT = metaKey('compact_rev');
const META_COMPACT_DONE = metaKey('compact_done_rev');
const META_MEMBERS = metaKey('members');
/** The auth state record's key (export.ts reads it from its own iterator). */
export const META_AUTH = metaKey('auth');

/** The cluster membership stored with the state (a record the main thread wrote, opaque here), or null before any conf change. */
export function loadMembers(db: RocksLevel): Buffer | null {
  const [raw] = db._getManySync([META_MEMBERS], { valueEncoding: 'buffer' });
  return raw ? Buffer.from(raw) : null;
}

/** The auth store's state record (src/auth/state-record.ts, opaque here), or null before any auth request. */
export function loadAuth(db: RocksLevel): Buffer | null {
  const [raw] = db._getManySync([META_AUTH], { valueEncoding: 'buffer' });
  return raw ? Buffer.from(raw) : null;
}

export interface WriterState {
  appliedIndex: number;
  appliedTerm: number;
  rev: number;
  compactRev: number;
  compactDoneRev: number;
}

function u48(n: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

/** The writer state from the meta records, however they are read (a get, or a snapshot's iterator). */
export function writerStateFromMeta(get: (key: Buffer) => Buffer | undefined): WriterState {
  const readU48 = (key: Buffer) => get(key)?.readUIntBE(0, 6) ?? 0;
  const appliedRaw = get(META_APPLIED);
  return {
    appliedIndex: appliedRaw ? appliedRaw.readUIntBE(0, 6) : 0,
    appliedTerm: appliedRaw && appliedRaw.length >= 12 ? appliedRaw.readUIntBE(6, 6) : 0,
    // etcd's store starts at revision 1: the first write gets revision 2.
    rev: Math.max(1, readU48(META_REV)),
    compactRev: readU48(META_COMPACT),
    compactDoneRev: readU48(META_COMPACT_DONE),
  };
}

export function loadWriterState(db: RocksLevel): WriterState {
  return writerStateFromMeta((key) => db._getManySync([key], { valueEncoding: 'buffer' })[0]);
}

/**
 * The single MVCC writer. Changes accumulate in one RocksDB WriteBatch (with an
 * in-memory overlay so later entries of the same batch see earlier ones) and
 * are written together with the applied raft index, so a crash leaves either
 * all of a batch or none of it, and recovery replays the raft log from the
 * stored applied index.
 */
export class MvccWriter implements LatestSource {
  readonly reader: DbReader;
  private readonly batch: ReusableBatch;
  private overlay = new Map<string, { key: Buffer; v: StoredVersion }>();
  /** Every change since the last takeChanges(), in (revision, sub) order: the watch event stream. */
  private changes: { key: Buffer; v: StoredVersion }[] = [];
  state: WriterState;

  // Revision bookkeeping of the request being applied (etcd's storeTxnWrite).
  private beginRev = 0;
  private sub = 0;

  /**
   * The latest create revision, version and lease of recently written keys, so
   * a put does not read RocksDB to learn them. Two generations of at most
   * META_GENERATION_KEYS each: inserts go to the young one, which becomes the
   * old one when full (the old one is dropped). Evicting one oldest entry per
   * insert instead cost a scan past every deleted slot at the front of V8's
   * hash table: 60% of the apply thread once 200k keys were cached. A miss
   * reads RocksDB. Values are not kept: requests that need the previous value
   * (prev_kv, ignore_value, compares) read it through getLatest().
   */
  private meta = new Map<string, KeyMeta>();
  private oldMeta = new Map<string, KeyMeta>();
  private static readonly META_GENERATION_KEYS = 100_000;

  constructor(readonly db: RocksLevel) {
    this.reader = new DbReader(db);
    this.batch = new ReusableBatch(db, LANES);
    this.state = loadWriterState(db);
  }

  get pendingChanges(): number { return this.overlay.size; }

  // ---- LatestSource: RocksDB as modified by the unwritten batch ----

  getLatest(key: Buffer): StoredVersion | null {
    const o = this.overlay.get(key.toString('latin1'));
    return o ? o.v : this.reader.getLatest(key);
  }

  scanLatest(start: Buffer, end: Buffer | null, fn: (key: Buffer, v: StoredVersion) => void): void {
    if (this.overlay.size === 0) return this.reader.scanLatest(start, end, fn);
    const merged = new Map<string, { key: Buffer; v: StoredVersion }>();
    this.reader.scanLatest(start, end, (key, v) => merged.set(key.toString('latin1'), { key, v }));
    for (const [k, o] of this.overlay) {
      if (Buffer.compare(o.key, start) >= 0 && (end === null || Buffer.compare(o.key, end) < 0)) merged.set(k, o);
    }
    const sorted = [...merged.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    for (const { key, v } of sorted) fn(key, v);
  }

  // ---- one mutating request: begin, put/del, end ----

  begin(): void {
    this.beginRev = this.state.rev;
    this.sub = 0;
  }

  /** The revision a read inside the current request sees (etcd: beginRev, +1 once it has changes). */
  get viewRev(): number { return this.sub > 0 ? this.beginRev + 1 : this.beginRev; }
  get changed(): boolean { return this.sub > 0; }

  /**
   * Live-key metadata for the writes: the cache, then the overlay, then RocksDB.
   * The cache first: write() puts every change in both, so for a key this batch
   * changed they agree, and most puts find their key there in one lookup. The
   * overlay still answers for a key the cache dropped (a batch past two
   * generations of it).
   */
  private latestMeta(key: Buffer, k: string): KeyMeta | null {
    const cached = this.meta.get(k) ?? this.oldMeta.get(k);
    if (cached !== undefined) return cached.tombstone ? null : cached;
    const o = this.overlay.get(k);
    if (o) return o.v.tombstone ? null : o.v;
    const v = this.reader.getLatest(key);
    this.remember(k, metaOf(v));
    return v && !v.tombstone ? v : null;
  }

  /**
   * Reads, in one MultiGet, the metadata of the keys an apply batch is about to
   * put that neither the batch nor the cache knows, so each put then finds it
   * cached (a fresh key space otherwise paid one RocksDB call per put).
   */
  prefetchMeta(keys: Buffer[]): void {
    const missing: Buffer[] = [];
    const names: string[] = [];
    // A key twice in `keys` is read twice: cheaper than a set of the ones seen, for how rarely it happens.
    for (const key of keys) {
      const k = key.toString('latin1');
      if (this.meta.has(k) || this.oldMeta.has(k) || (this.overlay.size > 0 && this.overlay.has(k))) continue;
      missing.push(key);
      names.push(k);
    }
    if (missing.length === 0) return;
    const found = this.reader.getLatestMany(missing);
    for (let i = 0; i < missing.length; i++) this.remember(names[i]!, metaOf(found[i] ?? null));
  }

  private remember(k: string, m: KeyMeta): void {
    if (this.meta.size >= MvccWriter.META_GENERATION_KEYS && !this.meta.has(k)) {
      this.oldMeta = this.meta;
      this.meta = new Map();
    }
    this.meta.set(k, m);
  }

  put(key: Buffer, value: Buffer, lease: bigint): StoredVersion {
    const rev = this.beginRev + 1;
    const k = key.toString('latin1');
    const live = this.latestMeta(key, k);
    // A key moved to another lease, or to none, leaves its old lease.
    if (live && live.lease !== 0n && live.lease !== lease) this.batch.del(attachKey(live.lease, key));
    if (lease !== 0n) this.batch.put(attachKey(lease, key), EMPTY);
    const v: StoredVersion = {
      tombstone: false,
      createRevision: live ? live.createRevision : rev,
      modRevision: rev,
      version: live ? live.version + 1 : 1,
      lease,
      sub: this.sub,
      value,
    };
    this.write(key, k, v);
    return v;
  }

  del(key: Buffer): void {
    const k = key.toString('latin1');
    const prev = this.latestMeta(key, k);
    if (prev && prev.lease !== 0n) this.batch.del(attachKey(prev.lease, key));
    const v: StoredVersion = {
      tombstone: true, createRevision: 0, modRevision: this.beginRev + 1, version: 0, lease: 0n, sub: this.sub, value: Buffer.alloc(0),
    };
    this.write(key, k, v);
  }

  /** `k`: the key as a latin1 string (the maps' key). Each record is written in place, in its family's lane. */
  private write(key: Buffer, k: string, v: StoredVersion): void {
    const b = this.batch;
    const vlen = RECORD_HEADER + v.value.length;
    // A reservation may move its lane's buffer: each stageOf() is read after its reservePut().
    let at = b.reservePut(LANE_LATEST, 1 + key.length, vlen);
    let s = b.stageOf(LANE_LATEST);
    writeVersionAt(s, writeLatestKeyAt(s, at, key), v);
    at = b.reservePut(LANE_HISTORY, historyKeyLength(key), vlen);
    s = b.stageOf(LANE_HISTORY);
    writeVersionAt(s, writeHistoryKeyAt(s, at, key, v.modRevision), v);
    at = b.reservePut(LANE_BY_REV, BY_REV_KEY_BYTES, key.length);
    s = b.stageOf(LANE_BY_REV);
    s.set(key, writeByRevKeyAt(s, at, v.modRevision, v.sub));
    this.overlay.set(k, { key, v });
    this.remember(k, { tombstone: v.tombstone, createRevision: v.createRevision, version: v.version, lease: v.lease });
    this.changes.push({ key, v });
    this.sub++;
  }

  end(): void {
    if (this.sub > 0) this.state.rev = this.beginRev + 1;
  }

  takeChanges(): { key: Buffer; v: StoredVersion }[] {
    const c = this.changes;
    this.changes = [];
    return c;
  }

  // ---- leases (existence and TTL; the clock lives on the main thread) ----

  putLease(id: bigint, ttl: number): void {
    const v = Buffer.allocUnsafe(8);
    v.writeBigInt64BE(BigInt(ttl));
    this.batch.put(leaseKey(id), v);
  }

  delLease(id: bigint): void {
    this.batch.del(leaseKey(id));
  }

  // ---- batch boundaries ----

  markApplied(index: number, term: number): void {
    this.state.appliedIndex = index;
    this.state.appliedTerm = term;
  }

  /** Stores the membership in the current batch (written with its entry's applied index). */
  /** Stores a small state record (alarms) in the current batch, written with its entry's applied index. */
  putMeta(key: Buffer, record: Uint8Array): void {
    this.batch.put(key, record);
  }

  setMembers(record: Uint8Array): void {
    this.batch.put(META_MEMBERS, record);
  }

  /** The auth state record, written with the applied index of the entry that changed it. */
  setAuth(record: Uint8Array): void {
    this.batch.put(META_AUTH, record);
  }

  setCompactRev(rev: number): void {
    this.state.compactRev = rev;
    this.batch.put(META_COMPACT, u48(rev));
  }

  /** Writes the batch with the applied index and revision inside it. */
  async flush(sync = false): Promise<void> {
    const applied = Buffer.allocUnsafe(12);
    applied.writeUIntBE(this.state.appliedIndex, 0, 6);
    applied.writeUIntBE(this.state.appliedTerm, 6, 6);
    this.batch.put(META_APPLIED, applied);
    this.batch.put(META_REV, u48(this.state.rev));
    this.overlay.clear();
    this.batch.write(sync);
  }

  async markCompactionDone(rev: number): Promise<void> {
    this.state.compactDoneRev = rev;
    const b = this.db.batch();
    b.put(META_COMPACT_DONE, u48(rev));
    await b.write({ sync: false });
  }
}
