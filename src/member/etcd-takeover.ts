// The binary swap: etsd started on a data dir etcd 3.4 left (a stopped or
// killed member) takes it over once, before the member boots:
//
//   - the db (member/snap/db) becomes etsd's MVCC store at etcd's consistent
//     index (the last entry whose effects the db holds);
//   - the WAL entries after it become etsd's raft log at the same indexes and
//     terms, each as the etsd entry that does what etcd's did, with etcd's
//     HardState; the member's ordinary recovery then applies the committed ones
//     through etsd's own apply path (so replay is the same code as any write);
//   - the member and cluster ids come from the WAL's metadata, the membership
//     from where etcd 3.4 recovers it: the newest raft snapshot's v2 store
//     (member/snap/*.snap), then the conf changes and member attributes the
//     WAL holds after it (a restored data dir's db keeps the old cluster's
//     members bucket, which etcd ignores too).
//
// etcd's files are only read. Everything is built in a side directory and
// renamed into place last, so a failed or interrupted takeover is redone at
// the next start.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { RocksLevel } from '@nxtedition/rocksdb';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import { decodeEtcdConfChange, decodeEtcdRaftRequest, EtcdConfChangeType, type EtcdV3Kind } from '../proto/etcd-raft-request.js';
import { readEtcdDbMeta } from '../storage/bbolt/etcd-db-meta.js';
import { importEtcdDb } from '../storage/bbolt/import.js';
import { readNewestEtcdSnap } from '../storage/snapshot/etcd-snap.js';
import { EtcdEntryType, readEtcdWal, type EtcdEntry } from '../storage/wal/etcd-wal.js';
import { RecordType, type WalRecord } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { Wal } from '../storage/wal/wal.js';
import { EntryKind, encodeEntryData } from '../workers/protocol/entry.js';
import { ETCD_FILES_RECORD, etcdFilesFingerprint, type DataLayout } from './data-layout.js';
import { storeIdentity } from './identity.js';
import type { MemberRecord } from './membership.js';
import { STORE_OPEN_OPTIONS } from '../storage/store-options.js';
import { fsyncDir } from '../common/fsync-dir.js';

const KIND_OF: Partial<Record<EtcdV3Kind, EntryKind>> = {
  put: EntryKind.Put, deleteRange: EntryKind.DeleteRange, txn: EntryKind.Txn, compaction: EntryKind.Compaction,
  leaseGrant: EntryKind.LeaseGrant, leaseRevoke: EntryKind.LeaseRevoke, alarm: EntryKind.Alarm,
};

/** etcd's membership.MemberAttributesStorePath: /0/members/<id hex>/attributes. */
const ATTRIBUTES_PATH = /^\/0\/members\/([0-9a-f]+)\/attributes$/;
const NOOP = Buffer.alloc(0);

export interface TakeoverSummary {
  memberId: bigint;
  clusterId: bigint;
  consistentIndex: number;
  /** The db's revision before replay. */
  revision: number;
  /** Entries after the consistent index carried into etsd's log, and how many of them were committed. */
  carried: number;
  committed: number;
  /** Carried entries with nothing for etsd to do (empty, v2 store, range, lease checkpoint, conf change folded into the membership). */
  noops: number;
  hardState: { term: number; commit: number };
}

/** Thrown for an etcd data dir etsd cannot take over faithfully; nothing has been written. */
export class TakeoverError extends Error {
  override name = 'TakeoverError';
}

interface Carried { index: number; term: number; data: Buffer }

/** Folds a conf change into the membership (etcd's applyConfChange on RaftCluster). */
function foldConfChange(members: Map<bigint, MemberRecord>, removed: Set<bigint>, e: EtcdEntry): void {
  const cc = decodeEtcdConfChange(e.data);
  if (cc.type === EtcdConfChangeType.RemoveNode) {
    members.delete(cc.nodeId);
    removed.add(cc.nodeId);
    return;
  }
  const ctx = JSON.parse(cc.context.toString('utf8')) as { peerURLs?: string[]; isLearner?: boolean };
  const prev = members.get(cc.nodeId);
  if (cc.type === EtcdConfChangeType.UpdateNode) {
    if (prev) prev.peerUrls = ctx.peerURLs ?? prev.peerUrls;
    return;
  }
  const isLearner = cc.type === EtcdConfChangeType.AddLearnerNode;
  // AddNode on an existing learner promotes it (etcd's PromoteMember).
  if (prev) prev.isLearner = isLearner && prev.isLearner;
  else members.set(cc.nodeId, { id: cc.nodeId, name: '', peerUrls: ctx.peerURLs ?? [], clientUrls: [], isLearner: ctx.isLearner === true || isLearner });
}

/**
 * Folds a committed entry's membership effect (a conf change, a member-attributes
 * publish) into the membership, as etcd's apply does to its v2 store. Every entry
 * after the snapshot counts, at or below the consistent index too: etcd 3.4 replays
 * those into its v2 store at every start.
 */
function foldMembership(e: EtcdEntry, members: Map<bigint, MemberRecord>, removed: Set<bigint>): void {
  if (e.type === EtcdEntryType.ConfChange) {
    foldConfChange(members, removed, e);
    return;
  }
  const r = decodeEtcdRaftRequest(e.data);
  if (r.kind !== 'v2' || r.request.method !== 'PUT') return;
  const m = ATTRIBUTES_PATH.exec(r.request.path);
  const member = m ? members.get(BigInt('0x' + m[1]!)) : undefined;
  if (member === undefined) return;
  const attrs = JSON.parse(r.request.val) as { name?: string; clientURLs?: string[] };
  member.name = attrs.name ?? '';
  member.clientUrls = attrs.clientURLs ?? [];
}

/** One WAL entry past the consistent index as etsd entry data. */
function translate(e: EtcdEntry, committed: boolean): { data: Buffer; noop: boolean } {
  if (e.type === EtcdEntryType.ConfChange) {
    if (!committed) throw new TakeoverError(`the WAL holds an uncommitted conf change at index ${e.index}: start etcd once to settle it, then swap`);
    return { data: NOOP, noop: true };
  }
  if (e.type !== EtcdEntryType.Normal) throw new TakeoverError(`entry ${e.index} has the unknown type ${e.type}`);
  const r = decodeEtcdRaftRequest(e.data);
  switch (r.kind) {
    case 'empty': return { data: NOOP, noop: true };
    case 'auth':
      throw new TakeoverError(`entry ${e.index} is an auth request (field ${r.field}) past the db's consistent index; etsd does not import etcd's auth store: `
        + 'start etcd once and stop it with SIGTERM so its db holds it, then swap');
    // Member attributes are folded into the membership; the rest is etcd's v2 store (cluster version, SYNC, v2 keys), which etsd does not keep.
    case 'v2': return { data: NOOP, noop: true };
    case 'v3': {
      const kind = KIND_OF[r.op];
      // A range changes nothing; a lease checkpoint only the remaining TTL, which etsd restarts as etcd's lessor does.
      if (kind === undefined) return { data: NOOP, noop: true };
      const auth = r.username !== '' ? { username: r.username, revision: r.authRevision } : undefined;
      // Request id 0: nobody waits for a replayed entry.
      return { data: encodeEntryData(kind, 0, r.request, auth), noop: false };
    }
  }
}

/** Builds etsd's files for `layout` from etcd's; returns what was taken over. */
export async function takeOverEtcdDir(layout: DataLayout, log: Logger): Promise<TakeoverSummary> {
  const etcd = layout.etcd;
  if (etcd === null) throw new Error('takeOverEtcdDir needs an etcd data dir');
  const wal = readEtcdWal(etcd.walDir);
  if (wal.tornTail) log.warn({ at: wal.tornTail }, 'etcd WAL ends in a torn record (crash mid-write); reading up to it, as etcd does');
  const meta = readEtcdDbMeta(etcd.dbPath);
  if (meta.authEnabled) {
    throw new TakeoverError('etcd has auth enabled in this data dir; etsd does not import etcd\'s users and roles, '
      + 'so it would serve without auth: disable auth in etcd (etcdctl auth disable) before the swap');
  }
  if (meta.authUsers + meta.authRoles > 0) log.warn({ users: meta.authUsers, roles: meta.authRoles }, 'etcd\'s auth users and roles are not imported (auth is disabled)');

  const ci = meta.consistentIndex;
  const hs = wal.hardState;
  const first = wal.entries[0]?.index ?? 0;
  const last = wal.entries[wal.entries.length - 1]?.index ?? 0;
  // The term of the consistent index: the log base etsd's raft resumes from.
  const ciTerm = ci === 0 ? 0 : wal.entries.find((e) => e.index === ci)?.term ?? wal.snapshots.find((s) => s.index === ci)?.term;
  if (ciTerm === undefined) {
    throw new TakeoverError(`the WAL (entries ${first}..${last}) does not hold the db's consistent index ${ci} or a snapshot at it`);
  }
  if (wal.entries.length > 0 && first > ci + 1) throw new TakeoverError(`the WAL starts at entry ${first}, after the db's consistent index ${ci}: entries are missing`);

  // etcd 3.4's own source: the newest raft snapshot's v2 store, then the conf changes and
  // attributes after it. Without a snapshot the WAL reaches back to entry 1; else (never
  // seen from etcd) the db's members bucket stands in.
  const snap = readNewestEtcdSnap(dirname(etcd.dbPath), wal.snapshots);
  const base = snap !== null ? snap : first <= 1 ? { index: 0, members: [], removed: [] } : { index: 0, members: meta.members, removed: meta.removed };
  const members = new Map<bigint, MemberRecord>(base.members.map((m) => [m.id, { ...m }]));
  const removed = new Set(base.removed);
  const carried: Carried[] = [];
  let noops = 0;
  for (const e of wal.entries) {
    if (e.index > base.index && e.index <= hs.commit) foldMembership(e, members, removed);
    if (e.index <= ci) continue;
    const t = translate(e, e.index <= hs.commit);
    if (t.noop) noops++;
    carried.push({ index: e.index, term: e.term, data: t.data });
  }
  if (!members.has(wal.nodeId)) {
    throw new TakeoverError(removed.has(wal.nodeId)
      ? 'the member has been permanently removed from the cluster'
      : `member ${formatId(wal.nodeId)} (the etcd WAL's) is not in the membership etcd's snapshot and WAL hold`);
  }

  // Built aside, renamed in last: ids.json in the member dir is what says the takeover is done.
  const tmpDir = `${layout.memberDir}.importing`;
  // The WAL is in the member dir unless --wal-dir put it elsewhere; then it is built beside its place too.
  const walInside = layout.walDir === join(layout.memberDir, 'wal');
  const tmpWal = walInside ? join(tmpDir, 'wal') : `${layout.walDir}.importing`;
  // Left by an interrupted takeover (no ids.json was renamed in): etsd's own, never etcd's.
  for (const d of [tmpDir, tmpWal, layout.memberDir, layout.walDir]) rmSync(d, { recursive: true, force: true });
  mkdirSync(tmpDir, { recursive: true });

  const db = new RocksLevel(join(tmpDir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ ...STORE_OPEN_OPTIONS });
  let info;
  try {
    info = await importEtcdDb(etcd.dbPath, db, { index: ci, term: ciTerm });
  } finally {
    await db.close();
  }

  const { wal: out } = Wal.open(tmpWal);
  try {
    const records: WalRecord[] = carried.map((c) => ({ type: RecordType.Entry, index: c.index, term: c.term, data: c.data }));
    records.push({
      type: RecordType.HardState, index: 0, term: hs.term,
      data: encodeHardState({ term: hs.term, vote: hs.vote, commit: Math.max(hs.commit, ci) }),
    });
    out.append(records);
    out.sync();
  } finally {
    out.close();
  }

  const fd = openSync(join(tmpDir, ETCD_FILES_RECORD), 'w');
  try {
    writeSync(fd, JSON.stringify(etcdFilesFingerprint(etcd.walDir, dirname(etcd.dbPath))));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  storeIdentity(tmpDir, {
    memberId: wal.nodeId, clusterId: wal.clusterId, members: [...members.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
    joined: false, existed: true,
  });
  if (!walInside) { renameSync(tmpWal, layout.walDir); fsyncDir(dirname(layout.walDir)); }
  renameSync(tmpDir, layout.memberDir);
  fsyncDir(dirname(layout.memberDir));
  if (!existsSync(join(layout.memberDir, 'ids.json'))) throw new Error(`takeover did not leave ${layout.memberDir}/ids.json`);

  return {
    memberId: wal.nodeId, clusterId: wal.clusterId, consistentIndex: ci, revision: info.revision,
    carried: carried.length, committed: carried.filter((c) => c.index <= hs.commit).length, noops,
    hardState: { term: hs.term, commit: hs.commit },
  };
}

/** What the operator should see once: where the data came from and how much of etcd's log etsd will replay. */
export function logTakeover(log: Logger, layout: DataLayout, s: TakeoverSummary): void {
  log.info({
    'etcd-wal-dir': layout.etcd?.walDir, 'etcd-db': layout.etcd?.dbPath, 'etsd-member-dir': layout.memberDir,
    member: formatId(s.memberId), cluster: formatId(s.clusterId), revision: s.revision, 'consistent-index': s.consistentIndex,
    'entries-carried': s.carried, 'entries-to-replay': s.committed, 'entries-noop': s.noops, term: s.hardState.term, commit: s.hardState.commit,
  }, 'took over an etcd data dir (etcd\'s files are left as they were)');
}
