// One etsd member on the main thread: the composition root. It builds the
// rooms in the order recovery needs and wires each one's hooks to the room
// that owns the answer; it holds no logic of its own. Data flows one way:
//
//   services -> WritePath / ReadPath / Reconfig -> RaftLoop -> WAL worker
//            -> (committed) MembershipKeeper -> apply worker -> shards
//            -> result router -> RequestTable / WatchRouter -> services
//
// The services see the Member's methods below, each a one-line delegation.

import { bootCommit } from './boot-commit.js';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type http from 'node:http';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import { RaftNode } from '../raft/node.js';
import { EntryType, type Entry, type Message } from '../raft/types.js';
import { PeerTransport, parsePeerUrl } from '../transport/peer-transport.js';
import { peerSocketFactory } from '../tls/peer-sockets.js';
import { TlsSide } from '../tls/side.js';
import { OneOffPool } from '../workers/pool.js';
import { entryRecord } from '../workers/protocol/apply-ring.js';
import { EntryKind, type EntryAuth } from '../workers/protocol/entry.js';
import { AuthGate } from '../auth/gate.js';
import { bcryptCost } from '../auth/bcrypt-cost.js';
import { jwtTokensFor } from '../auth/jwt-provider.js';
import { encodeCompactionRequest } from '../proto/kv-codec.js';
import type { ShardOp } from '../workers/protocol/shard-ring.js';
import { Shared, sharedState } from '../workers/protocol/shared-state.js';
import { WAL_RELEASE, walRecordHeader } from '../workers/protocol/wal-ring.js';
import { AutoCompactor } from './auto-compactor.js';
import { loadOrCreateIdentity, type StoredIdentity } from './identity.js';
import { resolveLayout } from './data-layout.js';
import { logTakeover, takeOverEtcdDir } from './etcd-takeover.js';
import { MaintenanceJobs, type EtcdDbInfo, type HashResult } from './maintenance-jobs.js';
import { Defragmenter } from './defragmenter.js';
import { dbSizeReader } from './db-size-reader.js';
import { rocksdbNative, rocksdbUnavailableReason } from '../native/rocksdb.js';
import { checkInitialHashKV } from './corrupt-check.js';
import { restartAsStandalone, standaloneWalRecords } from './force-new-cluster.js';
import { CorruptMonitor } from './corrupt-monitor.js';
import { AlarmAction, encodeAlarmRequest } from '../proto/alarm-codec.js';
import { QuotaGuard } from './quota-guard.js';
import { quotaBytes } from '../storage/mvcc/quota.js';
import { AlarmType, type AlarmMember } from '../storage/mvcc/alarms.js';
import { Leadership } from './leadership.js';
import { IdGenerator, Lessor } from './lessor.js';
import { LeaseRenewals, type LeaseTtl } from './lease-renewals.js';
import { Membership, type MemberRecord } from './membership.js';
import { MembershipKeeper } from './membership-keeper.js';
import { createPeerHttpServer, handOverToHttp } from './peer-http.js';
import { routePeerMessage } from './peer-messages.js';
import { RaftLoop } from './raft-loop.js';
import { ReadPath } from './read-path.js';
import { Reconfig, type MemberOp } from './reconfig.js';
import { RequestTable, type AnswerSink } from './requests.js';
import { BusyPoll, DEFAULT_BUSY_POLL, NO_BUSY_POLL } from './busy-poll.js';
import { startResultLoop, type ResultHandlers } from './result-router.js';
import { SnapshotCoordinator } from './snapshots.js';
import { StageTracker } from './stage-tracker.js';
import { StageHistograms } from './stages.js';
import { WatchRouter, type StreamSink } from './watch-router.js';
import { WorkerSet } from './worker-set.js';
import { DirectApply } from './direct-apply.js';
import { WritePath } from './write-path.js';

export type { MemberOp } from './reconfig.js';
export type { StreamSink } from './watch-router.js';

/** How often requests and membership changes nobody answered are checked for etcd's timeout. */
const SWEEP_MS = 500;
/** A removed member stops this long after its removal applies, so its answers go out first. */
const REMOVED_STOP_DELAY_MS = 1000;

/** etcd's ReqTimeout: 5 s plus two election timeouts. */
const reqTimeoutMs = (cfg: Config): number => 5000 + 2 * cfg.electionTimeoutMs;

export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly lessor = new Lessor();
  readonly stages = new StageHistograms();
  /** etcd's id generator: lease ids the server chooses. */
  readonly leaseIds: IdGenerator;
  /** etcd's minimum lease TTL: ceil(1.5 x election timeout) seconds (2 s with the 1 s default). */
  readonly minLeaseTtl = 2;
  private readonly workers: WorkerSet;
  private readonly state: BigInt64Array;
  private readonly tracker = new StageTracker(this.stages);
  private readonly pool = new OneOffPool();
  private readonly requests: RequestTable;
  /** Whether the main thread's ring loops poll or sleep while requests wait. */
  private readonly busyPoll: BusyPoll;
  private raft!: RaftNode;
  private raftLoop!: RaftLoop;
  private reads!: ReadPath;
  private writes!: WritePath;
  private watches!: WatchRouter;
  private keeper!: MembershipKeeper;
  private direct!: DirectApply;
  private reconfig!: Reconfig;
  private snapshots!: SnapshotCoordinator;
  private leadership!: Leadership;
  private leaseRenewals!: LeaseRenewals;
  private maintenance!: MaintenanceJobs;
  private defrag!: Defragmenter;
  private dbSize: () => number = () => 0;
  private quota!: QuotaGuard;
  private transport!: PeerTransport;
  private peerHttp: http.Server | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private autoCompactor: AutoCompactor | null = null;
  private corruptMonitor: CorruptMonitor | null = null;
  private authGate!: AuthGate;
  private bcryptCostUsed = 10;
  private dbDir = '';
  private stopping = false;
  private clientSnapSeq = 0;

  private constructor(readonly cfg: Config, readonly log: Logger, private readonly ids: StoredIdentity, private readonly memberDir: string,
    private readonly walDir: string,
    /** Peer TLS (https:// peer URLs); null without peer certificates. */
    private readonly peerTls: TlsSide | null) {
    this.memberId = ids.memberId;
    this.clusterId = ids.clusterId;
    this.leaseIds = new IdGenerator(ids.memberId);
    this.workers = new WorkerSet(cfg, log, ids);
    this.state = sharedState(this.workers.shared);
    this.busyPoll = new BusyPoll(() => this.requests.size, cfg.busyPoll ? DEFAULT_BUSY_POLL : NO_BUSY_POLL);
    this.requests = new RequestTable(ids.memberId, cfg.maxPendingProposals, this.tracker, (reqId) => this.reads.forget(reqId), this.busyPoll);
  }

  static async start(cfg: Config, log: Logger): Promise<Member> {
    const layout = resolveLayout(cfg);
    if (layout.etcd !== null) logTakeover(log, layout, await takeOverEtcdDir(layout, log));
    const { memberDir, walDir } = layout;
    mkdirSync(memberDir, { recursive: true });
    const peerTls = await TlsSide.prepare(cfg.tls, 'peer', cfg.dataDir, cfg.listenPeerUrls, log);
    const m = new Member(cfg, log, await loadOrCreateIdentity(memberDir, cfg, peerTls), memberDir, walDir, peerTls);
    await m.boot();
    return m;
  }

  // ---- what the services and endpoints read ----
  get raftTerm(): number { return this.raft.term; }
  get commitIndex(): number { return this.raft.commit; }
  get appliedIdx(): number { return this.reads.applied; }
  get pendingCount(): number { return this.requests.size; }
  /** Proposals that failed (timeout, leader lost, refused): etcd_server_proposals_failed_total. */
  get proposalsFailed(): number { return this.requests.failedTotal; }
  /** Leaders seen, each one not the one before: etcd_server_leader_changes_seen_total. */
  get leaderChanges(): number { return this.leadership.leaderChanges; }
  /** The space quota in bytes (--quota-backend-bytes, etcd's default when 0). */
  get quotaBytes(): number { return quotaBytes(this.cfg.quotaBackendBytes); }
  get revision(): number { return Number(Atomics.load(this.state, Shared.Revision)); }
  get compactRevision(): number { return Number(Atomics.load(this.state, Shared.CompactRevision)); }
  get watcherTotal(): number { return this.watches.watcherTotal; }
  get shardCount(): number { return this.watches.shardCount; }
  get leaderId(): bigint { return this.raft.lead; }
  /** Members sorted by id. */
  get members(): MemberRecord[] { return this.keeper.current.list(); }
  get isLearnerSelf(): boolean { return this.keeper.learner; }
  /** Resolves once this member's attributes are published through raft: etcd serves clients from then on. */
  get published(): Promise<void> { return this.keeper.published; }
  /** The auth store as applied here, the simple tokens, and the checks made where requests enter. */
  get auth(): AuthGate { return this.authGate; }
  get fsyncHistogram() { return this.workers.fsyncHistogram; }
  get commitHistogram() { return this.workers.commitHistogram; }
  /** True when this member knows a leader (itself or another). */
  isLeaderKnown(): boolean { return this.raft.lead !== 0n; }
  isLeader(): boolean { return this.raft.isLeader(); }
  /** The database size (storage/mvcc/db-size.ts): Status dbSize, etcd_mvcc_db_total_size_in_bytes, what the quota counts. */
  dbSizeBytes(): number { return this.dbSize(); }

  // ---- what the services ask ----
  /** `auth`: the user the request was made as (etcd's RequestHeader username and auth revision), checked when applied. */
  propose(kind: EntryKind, request: Buffer, tReceived?: number, auth?: EntryAuth): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.proposeTo(kind, request, auth, { resolve, reject }, tReceived));
  }
  /** The same, answering `sink` (a gRPC stream) instead of a promise; the quota's refusal goes to the sink too. */
  proposeTo(kind: EntryKind, request: Buffer, auth: EntryAuth | undefined, sink: AnswerSink, tReceived = performance.now()): void {
    const refused = this.quota.check(kind, request);
    if (refused) return sink.reject(refused);
    this.writes.proposeTo(kind, request, tReceived, auth, sink);
  }
  /** Maintenance.Alarm: every action goes through the log, as in etcd 3.4. */
  alarm(request: Buffer): Promise<Buffer> { return this.writes.propose(EntryKind.Alarm, request); }
  /** Alarms raised in the cluster (types only), for /health. */
  alarms(): AlarmType[] { return this.quota.alarms(); }
  /** The raised alarms with their members (read from the store only when one is raised). */
  async alarmMembers(): Promise<AlarmMember[]> { return this.alarms().length === 0 ? [] : this.maintenance.alarms(); }
  /** A password's bcrypt hash, made in the pool with --bcrypt-cost before the request is proposed. */
  bcryptHash(password: string): Promise<string> { return this.pool.run({ kind: 'bcryptHash', password, cost: this.bcryptCostUsed }); }
  bcryptCompare(password: string, hash: string): Promise<boolean> { return this.pool.run({ kind: 'bcryptCompare', password, hash }); }
  range(request: Buffer, serializable: boolean, tReceived?: number): Promise<Buffer> { return this.reads.range(request, serializable, tReceived); }
  /** Resolves once everything committed so far is applied here (etcd's linearizableReadNotify). */
  linearizableBarrier(): Promise<void> { return this.reads.linearizableBarrier(); }
  shardCall(op: ShardOp, payload: Uint8Array, rpc: string): Promise<Buffer> { return this.reads.shardCall(op, payload, rpc); }
  leaseKeys(id: bigint): Promise<Buffer[]> { return this.reads.leaseKeys(id); }
  memberOp(op: MemberOp): Promise<MemberRecord> { return this.reconfig.memberOp(op); }
  moveLeader(target: bigint): Promise<void> { return this.leadership.moveLeader(target); }
  hashKV(revision: number): Promise<HashResult> { return this.maintenance.hashKV(revision); }
  hash(): Promise<HashResult> { return this.maintenance.hash(); }
  /** Maintenance.Defragment: a RocksDB compaction of the whole store; reads and writes go on. */
  defragment(): Promise<void> { return this.defrag.defragment(); }
  /**
   * Maintenance.Snapshot: the store as an etcd 3.4 bbolt file in <data-dir>/member/snap
   * (emptied at boot, so a crash leaves nothing behind). The caller streams it and removes it.
   */
  async etcdDbFile(): Promise<{ path: string; info: EtcdDbInfo }> {
    const dir = join(this.memberDir, 'snap');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `client-${process.pid}-${++this.clientSnapSeq}.db`);
    try {
      return { path, info: await this.maintenance.etcdDb(path, this.members) };
    } catch (err) {
      rmSync(path, { force: true });
      throw err;
    }
  }
  /** LeaseKeepAlive: the leader's answer (forwarded there from a follower), 0 for no such lease. */
  leaseRenew(id: bigint): Promise<number> { return this.leaseRenewals.renew(id); }
  /** LeaseTimeToLive: seconds left by the leader's clock (forwarded there from a follower), null for no such lease. */
  leaseTimeToLive(id: bigint): Promise<LeaseTtl> { return this.leaseRenewals.timeToLive(id); }
  openStream(sink: StreamSink): number { return this.watches.openStream(sink); }
  closeStream(streamId: number): void { this.watches.closeStream(streamId); }
  shardOf(streamId: number, watchId: number): number { return this.watches.shardOf(streamId, watchId); }
  addWatchers(shard: number, delta: number): void { this.watches.addWatchers(shard, delta); }
  sendShard(shard: number, parts: Uint8Array[]): void { this.watches.sendShard(shard, parts); }

  private async boot(): Promise<void> {
    const { cfg, log, memberId, workers } = this;
    // etcd makes its token provider before serving: bad JWT options stop the start.
    const jwt = jwtTokensFor(cfg.authToken, log);
    this.dbDir = join(this.memberDir, 'db');
    const applied = await workers.startApply(this.dbDir);
    // Snapshot files left by a crash: the apply worker has finished any install it had begun.
    rmSync(join(this.memberDir, 'snap'), { recursive: true, force: true });
    for (const l of applied.leases) this.lessor.granted(l.id, l.ttl);
    this.authGate = new AuthGate(applied.auth, applied.appliedIndex, { ttlMs: cfg.authTokenTtlMs }, jwt);
    this.authGate.start();
    const cost = bcryptCost(cfg.bcryptCost);
    if (cost.defaulted) log.warn({ 'min-cost': 4, 'max-cost': 31, 'default-cost': cost.cost, 'given-cost': cfg.bcryptCost }, 'use default bcrypt cost instead of the invalid given cost');
    this.bcryptCostUsed = cost.cost;
    const membership = applied.members !== null ? Membership.fromBytes(applied.members) : new Membership(this.ids.members);
    if (!membership.has(memberId)) {
      throw new Error(membership.isRemoved(memberId)
        ? 'the member has been permanently removed from the cluster'
        : `member ${formatId(memberId)} is not in the cluster's membership`);
    }

    const recovered = await workers.startWal(this.walDir);
    if (recovered.repair) log.warn({ repair: recovered.repair }, 'repaired torn WAL tail');
    let entries: Entry[] = recovered.log.entries.filter((e) => e.index > applied.appliedIndex);
    const boot = bootCommit(recovered.log.hardState.commit, entries.length > 0 ? entries[entries.length - 1]!.index : null, applied.appliedIndex);
    if (boot.clampedFrom !== null) log.warn({ durableCommit: boot.clampedFrom, commit: boot.commit }, 'durable commit beyond the log (a crash before a snapshot install): booting from the last index held');
    let commit = boot.commit;
    if (cfg.forceNewCluster) {
      const hs = recovered.log.hardState;
      const r = restartAsStandalone(memberId, membership.list().map((m) => m.id), entries, Math.max(commit, applied.appliedIndex), hs.term);
      // etcd's wording (restartAsStandaloneNode).
      if (r.discarded > 0) log.info({ 'entry-index': r.firstDiscarded, 'commit-index-from-wal': hs.commit, 'number-of-discarded-entries': r.discarded }, 'discarding uncommitted WAL entries');
      workers.walOut.sendAll(standaloneWalRecords(r, hs.term, hs.vote));
      log.info({ 'cluster-id': formatId(this.clusterId), 'local-member-id': formatId(memberId), 'commit-index': r.commit }, 'forcing restart member');
      entries = r.entries;
      commit = r.commit;
    }
    this.raft = new RaftNode({
      id: memberId,
      voters: membership.voters(),
      learners: membership.learners(),
      electionTick: Math.max(2, Math.round(cfg.electionTimeoutMs / cfg.heartbeatIntervalMs)),
      heartbeatTick: 1,
      preVote: cfg.preVote,
      // Never compacted by raft itself: the snapshot coordinator cuts it after --snapshot-count entries.
      retainApplied: Number.MAX_SAFE_INTEGER,
      rng: Math.random,
      // A fresh member of a new cluster bootstraps at term 1, as etcd does, so its first election makes term 2.
      hardState: {
        term: Math.max(recovered.log.hardState.term, applied.appliedTerm, applied.appliedIndex === 0 && entries.length === 0 && !this.ids.joined ? 1 : 0),
        vote: recovered.log.hardState.vote, commit,
      },
      entries,
      applied: { index: applied.appliedIndex, term: applied.appliedTerm },
    });
    log.info({ appliedIndex: applied.appliedIndex, revision: applied.rev, replay: entries.length }, 'recovered state');

    await workers.startShards(applied.handle);
    this.wireRooms(membership, applied.appliedIndex, applied.handle);
    for (const ring of workers.shardResults) startResultLoop(ring, this.results, this.busyPoll, () => workers.running, (err) => workers.fatal('result loop failed', err));
    // Durable notices first: an entry the WAL handed to the apply worker is durable (and, raft hears, committed) before it is answered.
    startResultLoop(workers.applyResults, this.results, this.busyPoll, () => workers.running, (err) => workers.fatal('result loop failed', err), () => workers.pollDurable());
    workers.startDurableLoop((last, barrier) => this.raftLoop.onDurable(last, barrier), this.busyPoll);

    if (cfg.initialCorruptCheck && this.ids.existed) {
      await checkInitialHashKV({
        memberId, log, hashKV: (rev) => this.maintenance.hashKV(rev),
        peers: membership.list().filter((m) => m.id !== memberId).map((m) => ({ id: m.id, urls: m.peerUrls })),
        timeoutMs: reqTimeoutMs(cfg),
        peerTls: this.peerTls,
      });
    }
    for (const id of membership.removedIds()) this.transport.removePeer(id);
    await this.transport.start();
    if (this.keeper.soleVoter) this.raft.campaign();
    this.raftLoop.startTicking(cfg.heartbeatIntervalMs);
    this.sweepTimer = setInterval(() => {
      const noLeader = this.raft.lead === 0n;
      this.requests.sweep(noLeader);
      this.reconfig.sweep(noLeader);
    }, SWEEP_MS);
    this.sweepTimer.unref();
    this.keeper.startPublishing();
    if (cfg.autoCompaction) {
      this.autoCompactor = new AutoCompactor(cfg.autoCompaction, {
        isLeader: () => this.raft.isLeader(),
        revision: () => this.revision,
        compact: async (rev) => { await this.writes.propose(EntryKind.Compaction, encodeCompactionRequest({ revision: rev, physical: false })); },
        log,
      });
      this.autoCompactor.start();
    }
    if (cfg.corruptCheckTimeMs > 0) {
      this.corruptMonitor = new CorruptMonitor({
        memberId, intervalMs: cfg.corruptCheckTimeMs, timeoutMs: reqTimeoutMs(cfg), peerTls: this.peerTls, log,
        isLeader: () => this.raft.isLeader(),
        peers: () => this.keeper.current.list().filter((m) => m.id !== memberId).map((m) => ({ id: m.id, urls: m.peerUrls })),
        hashKV: (rev) => this.maintenance.hashKV(rev),
        linearizableBarrier: () => this.reads.linearizableBarrier(),
        // etcd 3.4.23 raises it for member 0: which side is corrupt is not known.
        raiseCorrupt: () => this.alarm(encodeAlarmRequest({ action: AlarmAction.ACTIVATE, memberId: 0n, alarm: AlarmType.CORRUPT })),
      });
      this.corruptMonitor.start();
    }
    this.leadership.note();
    log.info({ member: formatId(memberId), cluster: formatId(this.clusterId), members: membership.size }, 'member started');
    this.raftLoop.schedule();
  }

  /** Builds the rooms and connects each hook to its owner. */
  private wireRooms(membership: Membership, appliedIndex: number, dbHandle: bigint): void {
    const { cfg, log, memberId, raft, workers } = this;
    const send = (msgs: Message[]) => { if (msgs.length > 0) this.transport.send(msgs); };
    const scheduleRaft = () => this.raftLoop.schedule();

    this.peerHttp = createPeerHttpServer({
      clusterId: this.clusterId,
      memberList: () => this.keeper.current.list(),
      openSnapshot: () => this.snapshots.open(),
      snapshotSent: (to, ok) => this.raftLoop.reportSnapshot(to, ok),
      hashKV: (rev) => this.maintenance.hashKV(rev),
    }, log);
    const peerHttp = this.peerHttp;
    this.transport = new PeerTransport({
      selfId: memberId, clusterId: this.clusterId,
      listen: cfg.listenPeerUrls.map((u) => ({ ...parsePeerUrl(u), port: Number(new URL(u).port || 2380) })),
      sockets: peerSocketFactory(this.peerTls),
      peers: new Map(membership.list().filter((m) => m.id !== memberId).map((m) => [m.id, m.peerUrls[0]!])),
      onMessage: (m) => routePeerMessage(m, {
        leaseRenew: (from, reqId, id) => this.leaseRenewals.onRequest(from, reqId, id),
        leaseRenewed: (reqId, ttl) => this.leaseRenewals.onReply(reqId, ttl),
        leaseTtl: (from, reqId, id) => this.leaseRenewals.onTtlRequest(from, reqId, id),
        leaseTtlAnswer: (reqId, ttl, granted) => this.leaseRenewals.onTtlReply(reqId, ttl, granted),
        memberOp: (reqId, from, op) => this.reconfig.onForwarded(reqId, from, op),
        memberOpFailed: (reqId, err) => this.reconfig.onRefused(reqId, err),
        raft: (msg) => this.raftLoop.step(msg),
      }),
      onForeignConnection: (socket, head) => handOverToHttp(peerHttp, socket, head),
      onRemoved: () => this.keeper.onRemovedSelf(),
      onPeerStatus: (id, connected) => {
        if (!connected) this.raftLoop.reportUnreachable(id);
      },
      onPeerGone: (id) => this.raftLoop.reportPeerGone(id),
      log,
    });

    this.keeper = new MembershipKeeper(membership, memberId, raft, this.transport, cfg, log, {
      changeApplied: (reqId, member) => this.reconfig.onApplied(reqId, member),
      removed: () => setTimeout(() => {
        this.stop().then(() => process.exit(0), (err: unknown) => workers.fatal('stop after removal failed', err));
      }, REMOVED_STOP_DELAY_MS).unref(),
      propose: (data) => this.raftLoop.propose(data),
    });
    this.direct = new DirectApply(raft, () => this.keeper.soleVoter);
    this.reads = new ReadPath(raft, this.requests, workers.shardOut, this.keeper, scheduleRaft, appliedIndex);
    this.writes = new WritePath(raft, this.requests, this.tracker, (data) => this.raftLoop.propose(data));
    this.watches = new WatchRouter(workers.shardOut, workers.watcherCounts);
    this.maintenance = new MaintenanceJobs(this.pool, dbHandle, workers.shared);
    this.defrag = new Defragmenter(rocksdbNative, rocksdbUnavailableReason ?? '', dbHandle, this.dbDir, log);
    this.dbSize = dbSizeReader(rocksdbNative, dbHandle, this.dbDir, this.state, () => workers.running);
    this.quota = new QuotaGuard(this.state, quotaBytes(cfg.quotaBackendBytes), memberId, (kind, req) => this.writes.propose(kind, req), log);
    this.reconfig = new Reconfig({
      memberId, raft, peers: this.transport, membership: () => this.keeper.current,
      admit: () => this.requests.admit(), scheduleRaft, cfg, log,
    });
    this.snapshots = new SnapshotCoordinator({
      memberId, memberDir: this.memberDir, dbHandle, raft, applyOut: workers.applyOut, pool: this.pool,
      peerUrl: (id) => this.keeper.current.get(id)?.peerUrls[0], appliedIndex: () => this.reads.applied, cfg, log, peerTls: this.peerTls,
    }, {
      installed: (r, members) => {
        this.lessor.replaceAll(r.leases);
        if (members) this.keeper.replace(members);
        this.reads.advanceApplied(r.appliedIndex);
        this.authGate.advanceApplied(r.appliedIndex);
      },
      done: () => this.raftLoop.snapshotDone(),
    }, (bytes) => Membership.fromBytes(bytes));
    this.leaseRenewals = new LeaseRenewals({ memberId, raft, lessor: this.lessor, send });
    this.leadership = new Leadership(raft, this.state, this.lessor, log, {
      leaderChanged: (lead) => {
        this.requests.failForwarded();
        this.leaseRenewals.leaderChanged();
        if (lead !== 0n) this.keeper.leaderKnown();
      },
      scheduleRaft,
    }, cfg);
    this.raftLoop = new RaftLoop(raft, workers.walOut, {
      send,
      committed: (ents) => this.forwardCommitted(ents),
      readStates: (rs) => this.reads.onReadStates(rs),
      restoreSnapshot: (index) => this.snapshots.receive(index),
      stateChanged: () => this.leadership.note(),
      durableTo: (index) => this.tracker.durableTo(index),
      direct: (e) => this.direct.flag(e),
    }, log);
  }

  /**
   * Committed entries go to the apply worker in log order (but those the WAL worker hands
   * over itself); membership entries are applied here first.
   */
  private forwardCommitted(entries: Entry[]): void {
    this.tracker.committedTo(entries[entries.length - 1]!.index);
    const rest = this.direct.notDirect(entries);
    if (rest.length > 0) {
      this.workers.applyOut.sendAll(rest.map((e) => entryRecord(e.index, e.term, this.keeper.applyData(e, e.type === EntryType.ConfChange))));
    }
    // Direct entries may have applied before raft handed them out (appliedTo stops at what it handed out).
    this.raft.appliedTo(this.reads.applied);
  }

  /** Where each result record from the workers goes. */
  private readonly results: ResultHandlers = {
    applied: (index, synced) => {
      this.raft.appliedTo(index);
      this.snapshots.maybeCompactLog();
      this.reads.advanceApplied(index);
      this.authGate.advanceApplied(index);
      if (synced) this.workers.walOut.send([walRecordHeader(WAL_RELEASE, index, 0)]);
    },
    answer: (reqId, body, last) => {
      if (last) this.requests.settle(reqId, { ok: true, body });
      else this.requests.part(reqId, body);
    },
    error: (reqId, err) => { if (this.requests.settle(reqId, { ok: false, err })) this.quota.answeredWith(err); },
    watchData: (streamId, watchId, body, last) => this.watches.onWatchData(streamId, watchId, body, last),
    progress: (streamId, token, rev) => this.watches.onProgress(streamId, token, rev),
    lease: (granted, id, ttl) => { if (granted) this.lessor.granted(id, ttl); else this.lessor.revoked(id); },
    snapshotInstalled: (r) => this.snapshots.onInstalled(r),
    auth: (n) => this.authGate.onNotice(n.state, n.effect),
    drained: () => this.requests.answersHandedOut(),
  };

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.raftLoop?.stop();
    this.autoCompactor?.stop();
    this.corruptMonitor?.stop();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.keeper?.stop();
    this.snapshots?.stop();
    await this.transport?.stop();
    this.peerHttp?.close();
    this.reconfig?.stop();
    this.leaseRenewals?.stop();
    this.requests.stop();
    this.authGate?.stop();
    // RocksDB must have returned from a running compaction before the apply worker closes the database.
    await this.defrag?.stop();
    await this.workers.stop();
    await this.pool.close();
  }
}
