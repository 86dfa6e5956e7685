// The apply worker: the single MVCC writer. Applies committed raft entries in
// log order, one RocksDB WriteBatch per drained batch with the applied index
// inside it, then publishes the revision and hands results to the main thread.

import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { parentPort, workerData } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { RocksLevel } from '@nxtedition/rocksdb';
import { Ring, waitAnyReadable } from './ring/ring.js';
import { APPLY_CONTROL_INDEX, ApplyControl, copyEntryAt, decodeApplyControl, type RingEntry } from './protocol/apply-ring.js';
import { EntryKind, decodeEntryData } from './protocol/entry.js';
import { Shared, sharedState, storeShared } from './protocol/shared-state.js';
import { encodeApplied, encodeAuthNotice, encodeLeaseNotice, encodeResultError, encodeResultPending, writeResultOk, writeSnapshotInstalled } from './protocol/result-ring.js';
import { isOwnReqId } from './protocol/request-id.js';
import { writeBlocking } from './ring/write-blocking.js';
import { loadAuth, loadMembers } from '../storage/mvcc/writer.js';
import { attachedKeys } from '../storage/mvcc/leases.js';
import { AuthStore } from '../auth/store.js';
import { decodeAuthState, encodeAuthState } from '../auth/state-record.js';
import { decodeAuthRequest } from '../auth/request-record.js';
import { encodeAuthResponse } from '../auth/proto.js';
import { checkDeleteRange, checkLeaseKeys, checkPut, checkTxn, type OpCheck, type TxnCheck } from '../auth/kv-checks.js';
import type { AuthInfo } from '../auth/types.js';
import { AlarmStore, AlarmType, META_ALARMS, type AlarmMember } from '../storage/mvcc/alarms.js';
import { LEASE_OVERHEAD, available, costPut, costTxn } from '../storage/mvcc/quota.js';
import { dbSizeFrom } from '../storage/mvcc/db-size.js';
import { AlarmAction, decodeAlarmRequest, encodeAlarmResponse } from '../proto/alarm-codec.js';
import { Sweep } from '../storage/mvcc/compactor.js';
import { installSnapshot, openStore } from '../storage/snapshot/install.js';
import { EtcdError, Errors } from '../common/errors.js';
import * as codec from '../proto/kv-codec.js';
import type { PutRequest, RequestOp, ResponseHeader, TxnRequest } from '../proto/kv-types.js';
import { EVENT_DELETE, EVENT_PUT, encodeEvent } from '../proto/watch-codec.js';
import { toKeyValue } from '../storage/mvcc/reader.js';
import { writeRevisionEvents, writeStorageReset, type WireEvent } from './events.js';
import { SharedHistogram, type SharedHistogramLayout } from '../common/shared-histogram.js';
import { decodeLeaseGrantRequest, decodeLeaseId, encodeHeaderOnly, encodeLeaseGrantResponse } from '../proto/lease-codec.js';
import { STORE_OPEN_OPTIONS, tuneStore } from '../storage/store-options.js';

export interface ApplyWorkerData {
  dbDir: string;
  clusterId: bigint;
  memberId: bigint;
  shared: SharedArrayBuffer;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
  /** From the WAL worker: entries committed by their own durability (wal-ring.ts WAL_DIRECT). */
  directRing: SharedArrayBuffer;
  /** Rung by the producers of inRing and directRing. */
  doorbell: SharedArrayBuffer;
  /** Per shard: the ring carrying watch events, its consumer's doorbell. */
  eventRings: SharedArrayBuffer[];
  doorbells: SharedArrayBuffer[];
  /** Int32 per shard: how many watchers it holds (events go only to shards with watchers). */
  watcherCounts: SharedArrayBuffer;
  /** etcd_disk_backend_commit_duration_seconds */
  commitHistogram: SharedHistogramLayout;
  /** The space quota in bytes (Infinity: none); see storage/mvcc/quota.ts. */
  quotaBytes: number;
}

export interface ApplyReady {
  type: 'ready';
  leases: { id: bigint; ttl: number }[];
  handle: bigint;
  appliedIndex: number;
  appliedTerm: number;
  rev: number;
  compactRev: number;
  /** The membership as of the applied index (Membership.toBytes), null if no conf change was ever applied. */
  members: Uint8Array | null;
  /** The auth state record as of the applied index (auth/state-record.ts). */
  auth: Uint8Array;
}

/**
 * How many entries one apply batch takes at most. Small batches keep results
 * flowing to the main thread in step with the WAL (measured: 64 gave 16k
 * puts/s at 1000 clients where 1000 gave 14k, answers came in bursts); RocksDB's
 * cost per entry is already flat at this size.
 */
const MAX_BATCH = 64;
/**
 * Every this many applied entries the batch is written with sync, making
 * RocksDB durable up to the applied index so the raft log before it can be
 * released (etcd's --snapshot-count plays this role).
 */
const SYNC_EVERY_ENTRIES = 10000;
/** ...or this many bytes of entries, so big txns release the log as often as small puts. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;
/**
 * Before an install wipes storage, how long to wait for the shards to finish
 * the events already sent (they read storage for prev_kv). Past it the
 * install goes ahead: a late event may then lack its prev_kv.
 */
const QUIESCE_MS = 5000;
/**
 * By-revision records a compaction sweep handles per step: a small step
 * between two applied batches (what a write waits for at most), a larger one
 * while nothing waits to be applied.
 */
const SWEEP_STEP_BUSY = 100;
const SWEEP_STEP_IDLE = 500;

async function main(): Promise<void> {
  const d = workerData as ApplyWorkerData;
  mkdirSync(d.dbDir, { recursive: true });
  const db = new RocksLevel(d.dbDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ ...STORE_OPEN_OPTIONS });
  const untuned = tuneStore(db, d.dbDir);
  if (untuned !== null) console.warn(`etsd apply: RocksDB runs with the binding's memtable options: ${untuned}`);
  // Replaced wholesale when a snapshot is installed.
  let { writer, leases, applier } = await openStore(db);
  let alarms = AlarmStore.load(db);
  const leaseNotices: Uint8Array[] = [];
  /** The auth store: checked and changed only here, in log order; the main thread gets copies (AuthNotice). */
  let auth = loadAuthStore(db);
  const authNotices: Uint8Array[][] = [];
  const shared = sharedState(d.shared);
  const inRing = new Ring(d.inRing, { doorbell: d.doorbell });
  const directRing = new Ring(d.directRing, { doorbell: d.doorbell });
  const outRing = new Ring(d.outRing);
  const eventRings = d.eventRings.map((sab, i) => new Ring(sab, { doorbell: d.doorbells[i]! }));
  const watcherCounts = new Int32Array(d.watcherCounts);

  /** Sends the changes written so far to every shard that holds watchers. */
  const fanOut = () => {
    const changes = writer.takeChanges();
    if (changes.length === 0) return;
    const targets = eventRings.filter((_, i) => Atomics.load(watcherCounts, i) > 0);
    if (targets.length === 0) return;
    let i = 0;
    while (i < changes.length) {
      const rev = changes[i]!.v.modRevision;
      const events: WireEvent[] = [];
      for (; i < changes.length && changes[i]!.v.modRevision === rev; i++) {
        const { key, v } = changes[i]!;
        events.push({
          key, event: encodeEvent(v.tombstone ? EVENT_DELETE : EVENT_PUT, toKeyValue(key, v)),
          isCreate: !v.tombstone && v.createRevision === v.modRevision, isDelete: v.tombstone, modRevision: rev,
        });
      }
      for (const ring of targets) writeRevisionEvents(ring, rev, events);
    }
  };

  storeShared(shared, Shared.AppliedIndex, writer.state.appliedIndex);
  storeShared(shared, Shared.Revision, writer.state.rev);
  storeShared(shared, Shared.CompactRevision, writer.state.compactRev);
  storeShared(shared, Shared.Alarms, alarms.bits);
  /** The database size the quota counts (storage/mvcc/db-size.ts). */
  let dbSize = 0;
  const measureDb = () => {
    dbSize = dbSizeFrom((p) => { const v = db.getProperty(p); return v === '' ? null : Number(v); });
    storeShared(shared, Shared.DbSize, dbSize);
  };
  measureDb();
  const ready: ApplyReady = {
    type: 'ready', handle: db.handle, appliedIndex: writer.state.appliedIndex, appliedTerm: writer.state.appliedTerm,
    rev: writer.state.rev, compactRev: writer.state.compactRev, leases: leases.all(), members: loadMembers(db),
    auth: encodeAuthState(auth.state()),
  };
  parentPort!.postMessage(ready);

  /** The raft term for response headers, read once per batch (a BigInt64 load allocates). */
  let raftTerm = 0;
  const readTerm = (): void => { raftTerm = Number(Atomics.load(shared, Shared.RaftTerm)); };
  readTerm();
  const hdr = (revision: number): ResponseHeader => ({ clusterId: d.clusterId, memberId: d.memberId, revision, raftTerm });

  let results: { reqId: number; body: Buffer | null; err: EtcdError | null }[] = [];
  let syncedIndex = writer.state.appliedIndex;
  let bytesSinceSync = 0;
  const commitHist = new SharedHistogram(d.commitHistogram);
  const publish = async () => {
    const sync = writer.state.appliedIndex - syncedIndex >= SYNC_EVERY_ENTRIES || bytesSinceSync >= SYNC_EVERY_BYTES;
    if (FAILPOINTS_ARMED && failpoint('applyBeforeCommit')) throw new Error('failpoint applyBeforeCommit: injected write error');
    const t0 = performance.now();
    await writer.flush(sync);
    if (FAILPOINTS_ARMED && failpoint('applyAfterCommit')) throw new Error('failpoint applyAfterCommit: injected error');
    commitHist.observe((performance.now() - t0) / 1000);
    if (sync) { syncedIndex = writer.state.appliedIndex; bytesSinceSync = 0; }
    measureDb();
    storeShared(shared, Shared.AppliedIndex, writer.state.appliedIndex);
    // Shards read storage up to the published revision, so events go out after it.
    storeShared(shared, Shared.Revision, writer.state.rev);
    // Events are written first (a shard finds them before anyone has the answer) but the
    // shards are woken after the answers: their wake-up is not on the put's path.
    for (const r of eventRings) r.cork();
    fanOut();
    outRing.cork();
    // Notices before the answers: the main thread may read each record as soon as it is
    // written (it polls while a request waits), so a client that has its answer finds the
    // main thread already knows its token, or its lease granted or revoked.
    for (const n of authNotices) writeBlocking(outRing, n);
    authNotices.length = 0;
    for (const n of leaseNotices) writeBlocking(outRing, [n]);
    leaseNotices.length = 0;
    for (const r of results) {
      if (r.body) writeResultOk(outRing, r.reqId, r.body);
      else writeBlocking(outRing, encodeResultError(r.reqId, r.err!.code, r.err!.message));
    }
    // A polling main thread may already be answering: a sleep here shows what it could miss.
    if (FAILPOINTS_ARMED && failpoint('applyAfterAnswers')) throw new Error('failpoint applyAfterAnswers: injected error');
    writeBlocking(outRing, [encodeApplied(writer.state.appliedIndex, writer.state.rev, sync)]);
    outRing.uncork();
    for (const r of eventRings) r.uncork();
    results = [];
  };

  /**
   * The physical sweep of the compactions applied so far, or null. It runs a
   * step at a time in the apply loop, between applied batches (after their
   * publish, so it sees every write and none is in flight), so writes go on
   * while it works through a large history.
   */
  let sweep: Sweep | null = null;
  /** This member's physical Compaction requests: answered once their sweep is done, as etcd answers them. */
  let sweepWaiters: number[] = [];

  const compact = async (rev: number): Promise<void> => {
    if (rev <= writer.state.compactRev) throw Errors.compacted();
    if (rev > writer.state.rev) throw Errors.futureRev();
    writer.setCompactRev(rev);
    await publish();
    // Readers check the compact revision again after reading, so publishing it
    // before the sweep keeps them from returning a half-swept past revision.
    storeShared(shared, Shared.CompactRevision, rev);
    if (FAILPOINTS_ARMED && failpoint('compactBeforeSweep')) throw new Error('failpoint compactBeforeSweep: injected error');
    if (sweep === null) sweep = new Sweep(db, writer.state.compactDoneRev, rev);
    else sweep.extend(rev);
  };

  const answerSweepWaiters = (): void => {
    readTerm();
    for (const reqId of sweepWaiters) results.push({ reqId, body: codec.encodeCompactionResponse({ header: hdr(writer.state.rev) }), err: null });
    sweepWaiters = [];
  };

  /** One step of the pending sweep; the last one records it done and answers the compactions waiting for it. */
  const sweepStep = async (current: Sweep, limit: number): Promise<void> => {
    if (FAILPOINTS_ARMED && failpoint('compactSweepStep')) throw new Error('failpoint compactSweepStep: injected error');
    if (!(await current.step(limit))) return;
    if (FAILPOINTS_ARMED && failpoint('compactAfterSweep')) throw new Error('failpoint compactAfterSweep: injected error');
    sweep = null;
    await writer.markCompactionDone(current.toRev);
    answerSweepWaiters();
    await publish();
  };

  /** Maintenance.Alarm, applied as etcd's applierV3backend.Alarm: GET lists, ACTIVATE raises, DEACTIVATE clears. */
  const applyAlarm = (request: Buffer): Buffer => {
    const r = decodeAlarmRequest(request);
    let out: AlarmMember[] = [];
    if (r.action === AlarmAction.GET) {
      out = alarms.get(r.alarm as AlarmType);
    } else if (r.action === AlarmAction.ACTIVATE) {
      if (r.alarm !== AlarmType.NONE) {
        const a = alarms.activate(r.memberId, r.alarm as AlarmType);
        out = [a.member];
        if (a.changed) console.warn(`etsd apply: alarm raised: ${alarmName(r.alarm)} from ${r.memberId.toString(16)}`);
      }
    } else if (r.action === AlarmAction.DEACTIVATE) {
      const m = alarms.deactivate(r.memberId, r.alarm as AlarmType);
      if (m) out = [m];
    }
    if (r.action !== AlarmAction.GET) {
      writer.putMeta(META_ALARMS, alarms.toBytes());
      storeShared(shared, Shared.Alarms, alarms.bits);
    }
    return encodeAlarmResponse(out);
  };

  /**
   * etcd's capped and corrupt appliers (a raised NOSPACE refuses what adds
   * data; CORRUPT refuses every change) and its quota applier (a write that
   * did not fit is applied, and answered "database space exceeded", so the
   * main thread raises the alarm).
   */
  const guard = (kind: EntryKind, cost: number): boolean => {
    if (alarms.has(AlarmType.CORRUPT)) throw Errors.corrupt();
    if (!alarms.has(AlarmType.NOSPACE)) return available(dbSize, cost, d.quotaBytes);
    if (kind !== EntryKind.Txn || cost > 0) throw Errors.noSpace();
    return true;
  };

  /** The keys attached to a lease, read from RocksDB (this batch goes first); none for an unknown lease. */
  const leaseKeysOf = async (id: bigint): Promise<Buffer[]> => {
    if (id === 0n || !leases.has(id)) return [];
    if (writer.pendingChanges > 0) await publish();
    return attachedKeys(db, id);
  };

  /** An Auth entry: etcd's authApplierV3 and applierV3backend on its request. */
  const applyAuth = (ai: AuthInfo, request: Buffer, index: number): Buffer => {
    const before = { revision: auth.revision, enabled: auth.isEnabled };
    const out = auth.apply(ai, decodeAuthRequest(request), index);
    const changed = auth.revision !== before.revision || auth.isEnabled !== before.enabled;
    const state = encodeAuthState(auth.state());
    if (changed) writer.setAuth(state);
    if (changed || out.effect !== undefined) authNotices.push(encodeAuthNotice({ state, effect: out.effect ?? null }));
    return encodeAuthResponse(hdr(writer.state.rev), out.response);
  };

  /** A Put past its auth check (none without auth): synchronous, so the batch loop calls it without a promise. */
  const applyPut = (p: PutRequest): Buffer => {
    const fits = guard(EntryKind.Put, costPut(p));
    const r = applier.put(p);
    if (!fits) throw Errors.noSpace();
    return codec.encodePutResponseBytes(hdr(r.header.revision), r.prevKv);
  };

  /** Applies one entry; its answer, or null when there is none now (none at all, or a physical compaction's, sent after its sweep). */
  const applyOne = async (
    kind: EntryKind, request: Buffer, ai: AuthInfo, index: number, reqId: number, pre: Predecoded,
  ): Promise<Buffer | null> => {
    switch (kind) {
      case EntryKind.Noop: return null;
      case EntryKind.Members: writer.setMembers(request); return null;
      case EntryKind.Auth: return applyAuth(ai, request, index);
      case EntryKind.Alarm: return applyAlarm(request);
      case EntryKind.Put: {
        const p = pre?.kind === 'put' ? pre.put : codec.decodePutRequest(request);
        if (auth.isEnabled) checkPut(auth, ai, p, await leaseKeysOf(p.lease));
        return applyPut(p);
      }
      case EntryKind.DeleteRange: {
        const dr = codec.decodeDeleteRangeRequest(request);
        if (auth.isEnabled) checkDeleteRange(auth, ai, dr);
        if (alarms.has(AlarmType.CORRUPT)) throw Errors.corrupt();
        const r = applier.deleteRange(dr);
        r.header = hdr(r.header.revision);
        return codec.encodeDeleteRangeResponse(r);
      }
      case EntryKind.Txn: {
        const t = pre?.kind === 'txn' ? pre.txn : codec.decodeTxnRequest(request);
        if (auth.isEnabled) checkTxn(auth, ai, txnCheck(t));
        const fits = guard(kind, costTxn(t));
        // History of this batch is not in RocksDB yet; past-revision reads need it there.
        if (writer.pendingChanges > 0 && hasPastRange(t)) await publish();
        const r = applier.txn(t);
        if (!fits) throw Errors.noSpace();
        r.header = hdr(r.header.revision);
        return codec.encodeTxnResponse(r);
      }
      case EntryKind.LeaseGrant: {
        const g = decodeLeaseGrantRequest(request);
        const fits = guard(kind, LEASE_OVERHEAD);
        leases.grant(writer, g.id, Number(g.ttl));
        leaseNotices.push(encodeLeaseNotice(true, g.id, Number(g.ttl)));
        if (!fits) throw Errors.noSpace();
        return encodeLeaseGrantResponse(hdr(writer.state.rev), g.id, g.ttl);
      }
      case EntryKind.LeaseRevoke: {
        const id = decodeLeaseId(request);
        if (auth.isEnabled) checkLeaseKeys(auth, ai, await leaseKeysOf(id));
        if (alarms.has(AlarmType.CORRUPT)) throw Errors.corrupt();
        // Revoke reads the attachment records from RocksDB: this batch goes first.
        if (writer.pendingChanges > 0 && leases.has(id)) await publish();
        leases.revoke(writer, id);
        leaseNotices.push(encodeLeaseNotice(false, id, 0));
        return encodeHeaderOnly(hdr(writer.state.rev));
      }
      case EntryKind.Compaction: {
        if (alarms.has(AlarmType.CORRUPT)) throw Errors.corrupt();
        const c = codec.decodeCompactionRequest(request);
        await compact(c.revision);
        // As etcd: a physical compaction is answered once its sweep is done, any other at once.
        if (!c.physical) return codec.encodeCompactionResponse({ header: hdr(writer.state.rev) });
        if (isOwnReqId(reqId, d.memberId)) {
          sweepWaiters.push(reqId);
          // Applied: the main thread stops timing it and waits for the answer.
          writeBlocking(outRing, encodeResultPending(reqId));
        }
        return null;
      }
      default:
        throw new Error(`unknown entry kind ${kind as number}`);
    }
  };

  const installFrom = async (file: string): Promise<void> => {
    let writing = false;
    let error: string | null = null;
    try {
      const r = await installSnapshot(db, file, {
        beforeWrite: async (s) => {
          if (s.header.appliedIndex <= writer.state.appliedIndex) {
            throw new Error(`snapshot at index ${s.header.appliedIndex} is not past the applied index ${writer.state.appliedIndex}`);
          }
          writing = true;
          // Shards stop reading storage (odd epoch), and finish what they were sent, before the wipe.
          Atomics.add(shared, Shared.StorageEpoch, 1n);
          const until = Date.now() + QUIESCE_MS;
          while (!eventRings.every((r) => r.isEmpty()) && Date.now() < until) await new Promise((res) => setTimeout(res, 1));
        },
      });
      if (FAILPOINTS_ARMED && failpoint('snapshotAfterInstall')) throw new Error('failpoint snapshotAfterInstall: injected error');
      ({ writer, leases, applier } = r.store);
      // The new store is swept up to its own compaction (loadStore), which covers the ones waiting here
      // (their answers go out with the next publish).
      sweep = null;
      answerSweepWaiters();
      alarms = AlarmStore.load(db);
      storeShared(shared, Shared.Alarms, alarms.bits);
      auth = loadAuthStore(db);
    } catch (err) {
      // Once writing began the database is half-replaced: only a restart (which resumes the install) helps.
      if (writing) throw err;
      error = err instanceof Error ? err.message : String(err);
    }
    const st = writer.state;
    if (error === null) {
      syncedIndex = st.appliedIndex;
      bytesSinceSync = 0;
      storeShared(shared, Shared.AppliedIndex, st.appliedIndex);
      storeShared(shared, Shared.Revision, st.rev);
      storeShared(shared, Shared.CompactRevision, st.compactRev);
      Atomics.add(shared, Shared.StorageEpoch, 1n);
      for (const r of eventRings) writeStorageReset(r, st.rev);
      writeBlocking(outRing, encodeAuthNotice({ state: encodeAuthState(auth.state()), effect: 'reset' }));
    }
    writeSnapshotInstalled(outRing, {
      ok: error === null, appliedIndex: st.appliedIndex, appliedTerm: st.appliedTerm, rev: st.rev,
      leases: leases.all(), members: loadMembers(db), error,
    });
  };

  // Entries come from two producers: the main thread (committed entries and control
  // records) and the WAL worker (entries a sole voter's durability commits). Each ring is
  // in log order; every index comes through exactly one of them, so the next batch takes
  // whichever head carries the next index.
  const fromMain = new EntryQueue();
  const fromWal = new EntryQueue();
  let handled = writer.state.appliedIndex;
  let stalledSince = 0;
  for (;;) {
    if (fromMain.empty) fromMain.fill(inRing);
    if (fromWal.empty) fromWal.fill(directRing);
    const entries: RingEntry[] = [];
    while (entries.length < MAX_BATCH) {
      const m = fromMain.head;
      if (m && (m.index === APPLY_CONTROL_INDEX || m.index <= handled + 1)) {
        entries.push(fromMain.take());
        // A control record ends the batch: what it does (an install) moves the applied index.
        if (m.index === APPLY_CONTROL_INDEX) break;
        handled = Math.max(handled, m.index);
        continue;
      }
      const w = fromWal.head;
      if (!w || w.index > handled + 1) break;
      entries.push(fromWal.take());
      handled = Math.max(handled, w.index);
    }
    if (entries.length === 0) {
      if (!fromMain.empty || !fromWal.empty) {
        // A head waits for an index the other ring has not brought yet; it must come soon.
        if (stalledSince === 0) stalledSince = performance.now();
        else if (performance.now() - stalledSince > STALL_LIMIT_MS) {
          throw new Error(`apply: entry ${handled + 1} never came (main ring at ${fromMain.head?.index}, WAL ring at ${fromWal.head?.index})`);
        }
      }
      if (sweep !== null) {
        await sweepStep(sweep, SWEEP_STEP_IDLE);
        continue;
      }
      const waitOn = [fromMain.empty ? inRing : null, fromWal.empty ? directRing : null].filter((r): r is Ring => r !== null);
      if (waitOn.length > 0) {
        // Idle: background compactions and Defragment change the size without a write.
        if (!waitAnyReadable(waitOn, d.doorbell, 1000)) measureDb();
      } else await new Promise((res) => setTimeout(res, 1));
      continue;
    }
    stalledSince = 0;
    readTerm();
    // Decoded up front so the batch's puts find their keys' metadata with one MultiGet.
    const decoded = entries.map((e) => (e.index === APPLY_CONTROL_INDEX ? null : decodeEntryData(e.data)));
    const pre = decoded.map((x) => (x === null ? null : predecode(x.kind, x.request)));
    const putKeys: Buffer[] = [];
    for (const p of pre) {
      if (p?.kind === 'put') putKeys.push(p.put.key);
      else if (p?.kind === 'txn') txnPutKeys(p.txn, putKeys);
    }
    if (putKeys.length > 1) writer.prefetchMeta(putKeys);
    let unpublished = false;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.index === APPLY_CONTROL_INDEX) {
        // Entries before a control record are applied and published first.
        if (unpublished) await publish();
        unpublished = false;
        const c = decodeApplyControl(e.data);
        if (c.op === ApplyControl.InstallSnapshot) await installFrom(c.path);
        handled = writer.state.appliedIndex;
        continue;
      }
      unpublished = true;
      if (e.index <= writer.state.appliedIndex) continue; // replayed after restart
      const { kind, reqId, request, auth: ai } = decoded[i]!;
      bytesSinceSync += e.data.length;
      try {
        const p = pre[i]!;
        // The common case without a promise: a Put when auth is off (with auth on, its check may read RocksDB).
        const body = p?.kind === 'put' && !auth.isEnabled ? applyPut(p.put) : await applyOne(kind, request, ai ?? NO_USER, e.index, reqId, p);
        // Another member's request: that member answers it from its own apply.
        if (body && isOwnReqId(reqId, d.memberId)) results.push({ reqId, body, err: null });
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        if (isOwnReqId(reqId, d.memberId)) results.push({ reqId, body: null, err });
      }
      writer.markApplied(e.index, e.term);
    }
    if (unpublished) await publish();
    // One small step between applied batches: the sweep moves on under load without holding writes up.
    if (sweep !== null) await sweepStep(sweep, SWEEP_STEP_BUSY);
  }
}

/** A Put or Txn entry's request, decoded before its batch is applied (for the batch's key lookup). */
type Predecoded = { kind: 'put'; put: PutRequest } | { kind: 'txn'; txn: TxnRequest } | null;

function predecode(kind: EntryKind, request: Buffer): Predecoded {
  if (kind === EntryKind.Put) return { kind: 'put', put: codec.decodePutRequest(request) };
  if (kind === EntryKind.Txn) return { kind: 'txn', txn: codec.decodeTxnRequest(request) };
  return null;
}

/** The keys every put of a txn (both branches, nested txns too) may write: a superset is harmless. */
function txnPutKeys(t: TxnRequest, out: Buffer[]): void {
  for (const ops of [t.success, t.failure]) {
    for (const op of ops) {
      if (op.kind === 'put') out.push(op.put.key);
      else if (op.kind === 'txn') txnPutKeys(op.txn, out);
    }
  }
}

/** Entries copied out of one in-ring, waiting for their turn in log order. */
class EntryQueue {
  private items: RingEntry[] = [];
  private at = 0;
  get empty(): boolean { return this.at === this.items.length; }
  get head(): RingEntry | undefined { return this.items[this.at]; }
  take(): RingEntry { return this.items[this.at++]!; }
  fill(ring: Ring): void {
    if (this.at > 0) { this.items = []; this.at = 0; }
    ring.drainInPlace((area, at, len) => { this.items.push(copyEntryAt(area, at, len)); }, MAX_BATCH);
  }
}

/** An index one ring waits for that the other never brings within this long is a bug: stop rather than apply out of order. */
const STALL_LIMIT_MS = 30_000;

/** A request made without a token (etcd's empty AuthInfo: no user, revision 0). */
const NO_USER: AuthInfo = { username: '', revision: 0 };

function loadAuthStore(db: RocksLevel): AuthStore {
  const raw = loadAuth(db);
  return raw === null ? new AuthStore() : AuthStore.fromState(decodeAuthState(raw));
}

/** The fields of a txn the auth checks read. */
function txnCheck(t: TxnRequest): TxnCheck {
  return { compare: t.compare, success: t.success.map(opCheck), failure: t.failure.map(opCheck) };
}

function opCheck(op: RequestOp): OpCheck {
  switch (op.kind) {
    case 'range': return { kind: 'range', range: op.range };
    case 'put': return { kind: 'put', put: op.put };
    case 'deleteRange': return { kind: 'deleteRange', deleteRange: op.deleteRange };
    case 'txn': return { kind: 'txn', txn: txnCheck(op.txn) };
    case 'none': return { kind: 'none' };
  }
}

function hasPastRange(t: TxnRequest): boolean {
  for (const op of [...t.success, ...t.failure]) {
    if (op.kind === 'range' && op.range.revision > 0) return true;
    if (op.kind === 'txn' && hasPastRange(op.txn)) return true;
  }
  return false;
}

main().catch((err: unknown) => {
  // A half-alive member is worse than a dead one: the main thread exits on this.
  console.error('apply worker failed:', err);
  process.exit(70);
});

function alarmName(a: number): string {
  return a === AlarmType.NOSPACE ? 'NOSPACE' : a === AlarmType.CORRUPT ? 'CORRUPT' : String(a);
}
