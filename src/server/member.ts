import { Worker } from 'node:worker_threads';
import { mkdirSync, readFileSync, writeFileSync, renameSync, existsSync, rmSync, createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { computeClusterId, computeMemberId, formatId } from '../common/ids.js';
import { RaftNode, persistPoint } from '../raft/node.js';
import {
  ConfChangeType, EntryType, MessageType, NotLeaderError, ProposalDroppedError, type ConfChange, type Entry, type Message,
} from '../raft/types.js';
import { decodeConfChange } from '../raft/confchange.js';
import { Membership, decodeConfChangeContext, encodeConfChangeContext, type MemberRecord } from './membership.js';
import { fetchClusterFromPeers } from './join.js';
import { createPeerHttpServer, handOverToHttp, type SnapshotFile } from './peer-http.js';
import type http from 'node:http';
import { createSnapshotFile } from '../storage/snapshot/create.js';
import { PeerTransport } from '../transport/peer-transport.js';
import { APP_MESSAGE_TYPE_MIN } from '../transport/message-codec.js';
import { Ring } from '../workers/ring/ring.js';
import { Outbox } from '../workers/outbox.js';
import {
  EntryKind, ResultType, Shared, encodeInstallSnapshot, opHeader, reqIdBase, type SnapshotInstalled, ShardOp, WAL_BARRIER, WAL_LAZY, WAL_RELEASE, decodeResult, encodeEntryData, sharedState, storeShared,
} from '../workers/messages.js';
import type { ApplyReady, ApplyWorkerData } from '../workers/apply-worker.js';
import type { WalReady, WalWorkerData } from '../workers/wal-worker.js';
import type { ShardWorkerData } from '../workers/shard-worker.js';
import { RecordType } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { EtcdError, Errors, decodeError, encodeError } from './errors.js';
import { IdGenerator, Lessor } from './lessor.js';
import { StageHistograms } from './metrics/stages.js';
import { dirBytes } from './metrics/prometheus.js';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../common/shared-histogram.js';

const MiB = 1024 * 1024;
/** Our own peer message (see APP_MESSAGE_TYPE_MIN): a lease keep-alive a follower received, for the leader. */
const MSG_LEASE_RENEW = APP_MESSAGE_TYPE_MIN;
/** A membership change a client sent to a follower, for the leader: context = reqId, entries[0].data = JSON MemberOp. */
const MSG_MEMBER_OP = APP_MESSAGE_TYPE_MIN + 1;
/** The leader refused a forwarded membership change: context = reqId, entries[0].data = encodeError(err). */
const MSG_MEMBER_OP_FAILED = APP_MESSAGE_TYPE_MIN + 2;
/** A request with no answer after this long gets etcd's "request timed out" (or "no leader"). */
const REQUEST_TIMEOUT_MS = 7000;
/** etcd promotes a learner only once its log is within 90% of the leader's. */
const LEARNER_READY_PERCENT = 0.9;
/** etcd's HealthInterval: how long peers must have been connected before a risky membership change. */
const HEALTH_INTERVAL_MS = 5000;
/** Results answered per event-loop turn before incoming requests get their turn. */
const RESULTS_PER_TURN = 128;
const WAL_SEGMENT_BYTES = 64 * MiB;

interface Pending {
  resolve: (body: Buffer) => void;
  reject: (err: EtcdError) => void;
  parts?: Buffer[];
  /** For the stage histograms: which RPC, and when it passed each stage (performance.now(), ms). */
  rpc: string;
  tReceived: number;
  tProposed: number;
  tDurable: number;
  tCommitted: number;
  index: number;
  /** A write this follower sent to the leader: its stages are received->forwarded->applied. */
  forwarded?: boolean;
}

const RPC_OF_KIND: Record<EntryKind, string> = {
  [EntryKind.Noop]: 'Noop', [EntryKind.Put]: 'Put', [EntryKind.DeleteRange]: 'DeleteRange', [EntryKind.Txn]: 'Txn',
  [EntryKind.Compaction]: 'Compact', [EntryKind.LeaseGrant]: 'LeaseGrant', [EntryKind.LeaseRevoke]: 'LeaseRevoke', [EntryKind.Members]: 'Members', [EntryKind.MemberAttrs]: 'MemberAttrs',
};

/** Where a shard's output for one watch stream goes (the Watch service's per-stream state). */
export interface StreamSink {
  onWatchData(watchId: number, body: Buffer): void;
  onProgress(token: number, rev: number): void;
}
interface WaitingRead { index: number; send: () => void }

/** A membership change as clients ask for it (Cluster service). */
export type MemberOp =
  | { kind: 'add'; peerUrls: string[]; isLearner: boolean }
  | { kind: 'remove'; id: bigint }
  | { kind: 'update'; id: bigint; peerUrls: string[] }
  | { kind: 'promote'; id: bigint };

const CONF_CHANGE_NAMES: Record<ConfChangeType, string> = {
  [ConfChangeType.AddNode]: 'AddNode', [ConfChangeType.RemoveNode]: 'RemoveNode',
  [ConfChangeType.AddLearnerNode]: 'AddLearnerNode', [ConfChangeType.UpdateNode]: 'UpdateNode',
};

interface ConfWaiter { resolve: (m: MemberRecord) => void; reject: (err: EtcdError) => void; tReceived: number }

/**
 * One etsd member on the main thread: owns the raft node and the workers, and
 * turns client requests into proposals (writes) or shard reads (ranges).
 */
export class Member {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  private raft!: RaftNode;
  private shared = new SharedArrayBuffer(Shared.Size * 8);
  private state = sharedState(this.shared);
  private workers: Worker[] = [];
  private walOut!: Outbox;
  private applyOut!: Outbox;
  private shardOut: Outbox[] = [];
  private nextShard = 0;
  private watcherCounts!: Int32Array;
  private sinks = new Map<number, StreamSink>();
  private watchParts = new Map<string, Buffer[]>();
  private nextStreamId = 1;
  readonly lessor = new Lessor();
  readonly stages = new StageHistograms();
  readonly fsyncHistogram = SharedHistogram.allocate(ETCD_DISK_BUCKETS);
  readonly commitHistogram = SharedHistogram.allocate(ETCD_DISK_BUCKETS);
  dbDir = '';
  /** Proposals in log order, waiting to become durable / committed (for the stage histograms). */
  private inflight: Pending[] = [];
  private inflightDurable = 0;
  private inflightCommitted = 0;
  /** etcd's id generator: lease ids the server chooses. */
  readonly leaseIds: IdGenerator;
  /** etcd's minimum lease TTL: ceil(1.5 x election timeout) seconds (2 s with the 1 s default). */
  readonly minLeaseTtl = 2;
  private pending = new Map<number, Pending>();
  private waitingReads: WaitingRead[] = [];
  private appliedIndex = 0;
  private nextReqId: number;
  private readyScheduled = false;
  /** Who is in the cluster (names, URLs, learners); changes when conf changes apply. */
  membership!: Membership;
  private readonly initialMembers: MemberRecord[];
  private readonly joined: boolean;
  /** The only voter is us: reads and commits need nobody else. */
  private soleVoter = true;
  private lastLogCompaction = 0;
  private removedSelf = false;
  private learnerSelf = false;
  private confWaiters = new Map<number, ConfWaiter>();
  private peerHttp: http.Server | null = null;
  private publishTimer: NodeJS.Timeout | null = null;
  private transport: PeerTransport | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Readies whose writes are on their way to the WAL; their messages wait until they are durable. */
  private unsynced: { seq: number; point: { index: number; term: number } | null; messages: Message[]; awaitingSnapshot?: boolean }[] = [];
  /** The highest WAL barrier reported durable. */
  private durableBarrier = 0;
  /** A snapshot install in progress waits for the apply worker's answer here. */
  private snapshotInstalled: ((r: SnapshotInstalled) => void) | null = null;
  private memberDir = '';
  private dbHandle = 0n;
  private snapshotSeq = 0;
  private snapshotWanted = 0;
  private receivingSnapshot = false;
  private readySeq = 0;
  /** Linearizable reads waiting for their ReadIndex answer, by request id (the read context). */
  private readCtxs = new Map<number, () => void>();
  private lastLead = 0n;
  private lastTerm = 0;
  private lastHardState: { term: number; vote: bigint } | null = null;
  private stopping = false;

  private constructor(readonly cfg: Config, readonly log: Logger, ids: StoredIdentity) {
    this.memberId = ids.memberId;
    this.clusterId = ids.clusterId;
    this.initialMembers = ids.members;
    this.joined = ids.joined;
    this.leaseIds = new IdGenerator(ids.memberId);
    // Request ids only need to be unique among this process's in-flight requests;
    // a random base keeps them apart from ids replayed from the log after restart.
    // Request ids travel inside forwarded entries, so they must also differ between members.
    this.nextReqId = reqIdBase(ids.memberId) + Math.floor(Math.random() * 2 ** 30) * 1024;
  }

  static async start(cfg: Config, log: Logger): Promise<Member> {
    const memberDir = join(cfg.dataDir, 'member');
    mkdirSync(memberDir, { recursive: true });
    const m = new Member(cfg, log, await loadOrCreateIds(memberDir, cfg));
    m.memberDir = memberDir;
    await m.boot(memberDir);
    return m;
  }

  get raftTerm(): number { return this.raft.term; }
  get commitIndex(): number { return this.raft.commit; }
  get appliedIdx(): number { return this.appliedIndex; }
  get pendingCount(): number { return this.pending.size; }
  get compactRevision(): number { return Number(Atomics.load(this.state, Shared.CompactRevision)); }
  get watcherTotal(): number { let n = 0; for (let i = 0; i < this.watcherCounts.length; i++) n += Atomics.load(this.watcherCounts, i); return n; }
  /** True when this member knows a leader (itself or another). */
  isLeaderKnown(): boolean { return this.raft.lead !== 0n; }
  isLeader(): boolean { return this.raft.isLeader(); }
  get leaderId(): bigint { return this.raft.lead; }
  /** Members sorted by id. */
  get members(): MemberRecord[] { return this.membership.list(); }
  get isLearnerSelf(): boolean { return this.learnerSelf; }
  /** Bytes of the RocksDB files (etcd_mvcc_db_total_size_in_bytes, Status dbSize). */
  dbSizeBytes(): number { return dirBytes(this.dbDir); }
  get revision(): number { return Number(Atomics.load(this.state, Shared.Revision)); }

  private spawn<T>(file: string, data: unknown, name: string): { worker: Worker; ready: Promise<T> } {
    const worker = new Worker(new URL(`../workers/${file}`, import.meta.url), { workerData: data, name });
    this.workers.push(worker);
    const ready = new Promise<T>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    worker.on('error', (err) => this.fatal(`${name} worker crashed`, err));
    worker.on('exit', (code) => {
      if (!this.stopping) this.fatal(`${name} worker exited with code ${code}`, null);
    });
    return { worker, ready };
  }

  private fatal(what: string, err: unknown): never {
    this.log.fatal({ err }, what);
    // A member with a dead worker must not stay half-alive.
    process.exit(1);
  }

  private async boot(memberDir: string): Promise<void> {
    const ringErr = (err: unknown) => this.fatal('ring drain failed', err);
    // A ring record may be at most half a ring: inbound rings must hold the largest request.
    const inboundBytes = ringBytesFor(this.cfg.maxRequestBytes + 1 * MiB);
    const applyIn = Ring.allocate(inboundBytes);
    const applyRes = Ring.allocate(16 * MiB);
    const shards = this.cfg.shards;
    const eventRings = Array.from({ length: shards }, () => Ring.allocate(16 * MiB));
    const doorbells = Array.from({ length: shards }, () => new SharedArrayBuffer(4));
    const countsSab = new SharedArrayBuffer(4 * shards);
    this.watcherCounts = new Int32Array(countsSab);
    const apply = this.spawn<ApplyReady>('apply-worker.js', {
      dbDir: join(memberDir, 'db'), clusterId: this.clusterId, memberId: this.memberId,
      shared: this.shared, inRing: applyIn, outRing: applyRes, eventRings, doorbells, watcherCounts: countsSab,
      commitHistogram: this.commitHistogram,
    } satisfies ApplyWorkerData, 'apply');
    this.dbDir = join(memberDir, 'db');
    const applied = await apply.ready;
    this.dbHandle = applied.handle;
    // Snapshot files left by a crash: the apply worker has finished any install it had begun.
    rmSync(join(memberDir, 'snap'), { recursive: true, force: true });
    this.appliedIndex = applied.appliedIndex;
    for (const l of applied.leases) this.lessor.granted(l.id, l.ttl);
    this.membership = applied.members !== null ? Membership.fromJson(applied.members) : new Membership(this.initialMembers);
    if (!this.membership.has(this.memberId)) {
      throw new Error(this.membership.isRemoved(this.memberId)
        ? 'the member has been permanently removed from the cluster'
        : `member ${formatId(this.memberId)} is not in the cluster's membership`);
    }
    this.applyOut = new Outbox(new Ring(applyIn), ringErr);

    const walIn = Ring.allocate(inboundBytes);
    const walRes = Ring.allocate(1 * MiB);
    const wal = this.spawn<WalReady>('wal-worker.js', {
      walDir: this.cfg.walDir || join(memberDir, 'wal'), segmentBytes: WAL_SEGMENT_BYTES, inRing: walIn, outRing: walRes,
      fsyncHistogram: this.fsyncHistogram,
    } satisfies WalWorkerData, 'wal');
    const recovered = await wal.ready;
    if (recovered.repair) this.log.warn({ repair: recovered.repair }, 'repaired torn WAL tail');
    this.walOut = new Outbox(new Ring(walIn), ringErr);

    const entries: Entry[] = recovered.log.entries.filter((e) => e.index > applied.appliedIndex);
    this.raft = new RaftNode({
      id: this.memberId,
      voters: this.membership.voters(),
      learners: this.membership.learners(),
      electionTick: Math.max(2, Math.round(this.cfg.electionTimeoutMs / this.cfg.heartbeatIntervalMs)),
      heartbeatTick: 1,
      preVote: this.cfg.preVote,
      // Never compacted by raft itself: maybeCompactLog() cuts it after --snapshot-count entries.
      retainApplied: Number.MAX_SAFE_INTEGER,
      rng: Math.random,
      // A fresh member of a new cluster bootstraps at term 1, as etcd does, so its first election makes term 2.
      hardState: {
        term: Math.max(recovered.log.hardState.term, applied.appliedIndex === 0 && entries.length === 0 && !this.joined ? 1 : 0),
        vote: BigInt(recovered.log.hardState.vote), commit: recovered.log.hardState.commit,
      },
      entries,
      applied: { index: applied.appliedIndex, term: applied.appliedTerm },
    });
    this.log.info({ appliedIndex: applied.appliedIndex, revision: applied.rev, replay: entries.length }, 'recovered state');

    const shardReady: Promise<unknown>[] = [];
    for (let i = 0; i < shards; i++) {
      const inRing = Ring.allocate(inboundBytes);
      const outRing = Ring.allocate(16 * MiB);
      const s = this.spawn<unknown>('shard-worker.js', {
        shardId: i, handle: applied.handle, clusterId: this.clusterId, memberId: this.memberId,
        shared: this.shared, inRing, outRing, eventRing: eventRings[i]!, doorbell: doorbells[i]!,
        maxRequestBytes: this.cfg.maxRequestBytes, progressNotifyMs: this.cfg.watchProgressNotifyIntervalMs,
      } satisfies ShardWorkerData, `shard-${i}`);
      shardReady.push(s.ready);
      this.shardOut.push(new Outbox(new Ring(inRing, { doorbell: doorbells[i]! }), ringErr));
      this.readLoop(new Ring(outRing));
    }
    await Promise.all(shardReady);
    this.readLoop(new Ring(applyRes));
    this.durableLoop(new Ring(walRes));

    this.noteConf();
    this.peerHttp = createPeerHttpServer({
      clusterId: this.clusterId,
      memberList: () => this.membership.list(),
      openSnapshot: () => this.openSnapshot(),
    }, this.log);
    const peerHttp = this.peerHttp;
    this.transport = new PeerTransport({
      selfId: this.memberId, clusterId: this.clusterId,
      listen: this.cfg.listenPeerUrls.map((u) => { const url = new URL(u); return { host: url.hostname, port: Number(url.port || 2380) }; }),
      peers: new Map(this.membership.list().filter((m) => m.id !== this.memberId).map((m) => [m.id, m.peerUrls[0]!])),
      onMessage: (m) => this.onPeerMessage(m),
      onForeignConnection: (socket, head) => handOverToHttp(peerHttp, socket, head),
      onRemoved: () => this.onRemovedSelf(),
      onPeerStatus: (id, connected) => {
        if (!connected) { this.raft.reportUnreachable(id); this.scheduleReady(); }
      },
      log: this.log,
    });
    for (const id of this.membership.removedIds()) this.transport.removePeer(id);
    await this.transport.start();
    if (this.soleVoter) this.raft.campaign();
    this.tickTimer = setInterval(() => { this.raft.tick(); this.processReady(); }, this.cfg.heartbeatIntervalMs);
    this.sweepTimer = setInterval(() => this.sweepTimeouts(), 500);
    this.sweepTimer.unref();
    this.publishTimer = setInterval(() => this.publishAttributes(), Math.max(500, this.cfg.electionTimeoutMs / 2));
    this.publishTimer.unref();
    this.noteRaftState();
    this.log.info({ member: formatId(this.memberId), cluster: formatId(this.clusterId), members: this.membership.size }, 'member started');
    this.scheduleReady();
  }

  /** Caches what the membership says about us (after boot and every conf change). */
  private noteConf(): void {
    const c = this.raft.conf();
    this.soleVoter = c.voters.length === 1 && c.voters[0] === this.memberId;
    this.learnerSelf = this.membership.get(this.memberId)?.isLearner === true;
  }

  /**
   * etcd's publish: a member puts its name and client URLs into the membership
   * through raft once it has a leader. Fire and forget; retried by the timer
   * until the membership shows them.
   */
  private publishAttributes(): void {
    const me = this.membership.get(this.memberId);
    if (!me || this.raft.lead === 0n || this.stopping) return;
    const urls = this.cfg.advertiseClientUrls;
    if (me.name === this.cfg.name && me.clientUrls.length === urls.length && me.clientUrls.every((u, i) => u === urls[i])) {
      if (this.publishTimer) clearInterval(this.publishTimer);
      this.publishTimer = null;
      return;
    }
    const body = Buffer.from(JSON.stringify({ id: formatId(this.memberId), name: this.cfg.name, clientURLs: urls }), 'utf8');
    const data = encodeEntryData(EntryKind.MemberAttrs, 0, body);
    if (this.raft.isLeader()) {
      try { this.raft.propose(data); } catch (err) { if (!(err instanceof NotLeaderError || err instanceof ProposalDroppedError)) throw err; }
      this.scheduleReady();
    } else if (this.transport) {
      this.transport.send([proposalMessage(this.memberId, this.raft.lead, data)]);
    }
  }

  /** Maintenance.MoveLeader: hands leadership to target and resolves once it leads (etcd waits the same way). */
  async moveLeader(target: bigint): Promise<void> {
    if (!this.raft.isLeader()) throw Errors.notLeader();
    if (!this.raft.conf().voters.includes(target)) throw Errors.badLeaderTransferee();
    if (target === this.memberId) return;
    this.raft.transferLeader(target);
    this.scheduleReady();
    const deadline = performance.now() + 2 * this.cfg.electionTimeoutMs + 1000;
    while (this.raft.lead !== target) {
      if (performance.now() > deadline) throw Errors.leaderTransferTimeout();
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatIntervalMs));
    }
  }

  /** A follower got a lease keep-alive: the leader, whose clock decides expiry, must hear of it (etcd forwards it). */
  forwardLeaseRenew(id: bigint): void {
    if (this.raft.isLeader() || this.raft.lead === 0n || !this.transport) return;
    this.transport.send([{
      type: MSG_LEASE_RENEW as MessageType, from: this.memberId, to: this.raft.lead, term: 0, logTerm: 0, index: 0,
      commit: 0, reject: false, rejectHint: 0, entries: [], context: id,
    }]);
  }

  /** Messages from peers; a forwarded proposal (MsgProp) goes into the leader's log as it is. */
  private onPeerMessage(m: Message): void {
    if ((m.type as number) === MSG_LEASE_RENEW) {
      if (typeof m.context === 'bigint') this.lessor.renew(m.context);
      return;
    }
    if ((m.type as number) === MSG_MEMBER_OP) {
      this.onForwardedMemberOp(m);
      return;
    }
    if ((m.type as number) === MSG_MEMBER_OP_FAILED) {
      const reqId = Number(m.context);
      const w = this.confWaiters.get(reqId);
      if (w && m.entries[0]) {
        this.confWaiters.delete(reqId);
        w.reject(decodeError(m.entries[0].data));
      }
      return;
    }
    if (m.type === MessageType.MsgProp) {
      if (this.raft.isLeader()) {
        for (const e of m.entries) {
          try { this.raft.propose(e.data); } catch (err) { if (!(err instanceof NotLeaderError)) throw err; }
        }
      } else if (this.raft.lead !== 0n && this.raft.lead !== m.from && this.transport) {
        this.transport.send([{ ...m, from: this.memberId, to: this.raft.lead }]);
      }
      this.scheduleReady();
      return;
    }
    this.raft.step(m);
    this.scheduleReady();
  }

  /** Publishes term changes to the workers (response headers) and logs leader changes. */
  private noteRaftState(): void {
    if (this.raft.term !== this.lastTerm) {
      this.lastTerm = this.raft.term;
      storeShared(this.state, Shared.RaftTerm, this.raft.term);
    }
    if (this.raft.lead !== this.lastLead) {
      this.lastLead = this.raft.lead;
      if (this.raft.lead === 0n) this.log.warn({ term: this.raft.term }, 'no leader');
      else this.log.info({ term: this.raft.term, leader: formatId(this.raft.lead), self: this.raft.isLeader() }, 'leader elected');
      // A new leader restarts every lease's clock, as etcd's lessor promote does.
      if (this.raft.isLeader()) this.lessor.promote();
      this.failForwarded();
      if (this.raft.lead !== 0n && this.publishTimer) setImmediate(() => this.publishAttributes());
    }
  }

  /**
   * Writes this follower forwarded to a leader that is gone may never reach the
   * log: answer them "leader changed" (Unavailable; clients retry) now instead of
   * a timeout seconds later. One that did reach the log still applies; nobody waits for it.
   */
  private failForwarded(): void {
    for (const [id, p] of this.pending) {
      if (!p.forwarded) continue;
      this.pending.delete(id);
      p.reject(Errors.leaderChanged());
    }
  }

  /** Requests nobody answered in time (lost leader, dropped forward) get etcd's timeout. */
  private sweepTimeouts(): void {
    const limit = performance.now() - REQUEST_TIMEOUT_MS;
    for (const [id, w] of this.confWaiters) {
      if (w.tReceived < limit) {
        this.confWaiters.delete(id);
        w.reject(this.raft.lead === 0n ? Errors.noLeader() : Errors.timeout());
      }
    }
    for (const [id, p] of this.pending) {
      if (p.tReceived > 0 && p.tReceived < limit) {
        this.pending.delete(id);
        this.readCtxs.delete(id);
        p.reject(this.raft.lead === 0n ? Errors.noLeader() : Errors.timeout());
      }
    }
  }

  // ---- the raft loop ----

  private scheduleReady(): void {
    if (this.readyScheduled) return;
    this.readyScheduled = true;
    // setImmediate runs after the poll phase, so every request that arrived in
    // this turn of the event loop goes to the WAL in one batch (one fsync).
    setImmediate(() => {
      this.readyScheduled = false;
      this.processReady();
    });
  }

  private processReady(): void {
    if (!this.raft.hasReady()) return;
    const rd = this.raft.ready();
    // A snapshot to restore: the messages of this ready (and of every later one) wait until it is installed.
    let awaitingSnapshot = false;
    if (rd.snapshot) {
      awaitingSnapshot = true;
      this.receiveSnapshot(rd.snapshot.index);
    }
    const toWal: Uint8Array[][] = rd.entries.map((e) => [
      opHeader(e.type === EntryType.ConfChange ? RecordType.ConfChangeEntry : RecordType.Entry, e.index, e.term), e.data,
    ]);
    let lazy = true;
    if (rd.hardState) {
      const hs = rd.hardState;
      // Raft needs term and vote durable before it acts on them; a new commit
      // index alone may ride along with the next fsync (etcd persists it the
      // same way), so it does not cost an fsync of its own.
      lazy = this.lastHardState !== null && this.lastHardState.term === hs.term && this.lastHardState.vote === hs.vote;
      this.lastHardState = { term: hs.term, vote: hs.vote };
      toWal.push([opHeader(RecordType.HardState | (lazy ? WAL_LAZY : 0), 0, hs.term),
        encodeHardState({ term: hs.term, vote: Number(hs.vote), commit: hs.commit })]);
    }
    // Raft's rule: a ready's messages go out only once its writes, and every
    // earlier ready's, are durable. The barrier tells us when the WAL got there.
    // Except a leader's appends and heartbeats (etcd-io/raft's section 10.2.1): they
    // promise nothing about our disk, and the leader counts its own entries toward
    // commit only once durable; sending them at once overlaps our fsync with the
    // followers' instead of adding them up.
    let messages = rd.messages;
    if (messages.length > 0 && this.raft.isLeader()) {
      const early: Message[] = [];
      const late: Message[] = [];
      for (const m of messages) (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat ? early : late).push(m);
      this.sendMessages(early);
      messages = late;
    }
    if (rd.entries.length > 0 || !lazy || awaitingSnapshot) {
      const seq = ++this.readySeq;
      toWal.push([opHeader(WAL_BARRIER, seq, 0)]);
      this.unsynced.push({ seq, point: persistPoint(rd), messages, awaitingSnapshot });
    } else if (messages.length > 0) {
      const last = this.unsynced[this.unsynced.length - 1];
      if (last) last.messages.push(...messages);
      else this.sendMessages(messages);
    }
    if (toWal.length > 0) this.walOut.sendAll(toWal);
    if (rd.committedEntries.length > 0) {
      const now = performance.now();
      const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1]!.index;
      while (this.inflightCommitted < this.inflight.length && this.inflight[this.inflightCommitted]!.index <= lastCommitted) {
        this.inflight[this.inflightCommitted++]!.tCommitted = now;
      }
      // Drop what is committed from the tracking queue (keep it short).
      if (this.inflightCommitted > 1024) {
        this.inflight = this.inflight.slice(this.inflightCommitted);
        this.inflightDurable -= this.inflightCommitted;
        this.inflightCommitted = 0;
      }
      this.applyOut.sendAll(rd.committedEntries.map((e) => {
        const h = Buffer.allocUnsafe(16);
        h.writeDoubleLE(e.index, 0);
        h.writeDoubleLE(e.term, 8);
        // Membership changes are applied here; the state machine stores the resulting membership.
        if (e.type === EntryType.ConfChange) return [h, this.applyConfEntry(e)];
        if (e.data[0] === EntryKind.MemberAttrs) return [h, this.applyAttributesEntry(e)];
        return [h, e.data];
      }));
    }
    for (const rs of rd.readStates) {
      const send = this.readCtxs.get(Number(rs.requestCtx));
      if (!send) continue;
      this.readCtxs.delete(Number(rs.requestCtx));
      this.waitingReads.push({ index: rs.index, send });
    }
    if (rd.readStates.length > 0) {
      this.waitingReads.sort((a, b) => a.index - b.index);
      this.releaseReads();
    }
    this.noteRaftState();
  }

  /** A committed ConfChange entry: raft's membership, ours, the transport, and the client waiting for it. */
  private applyConfEntry(e: Entry): Buffer {
    const cc = decodeConfChange(e.data);
    this.raft.applyConfChange(cc);
    let ctx = null;
    try {
      ctx = cc.context ? decodeConfChangeContext(cc.context) : null;
    } catch (err) {
      this.log.error({ err, index: e.index }, 'conf change entry with an unreadable context');
    }
    this.membership.applyConfChange(cc, ctx);
    this.noteConf();
    this.log.info({ index: e.index, type: CONF_CHANGE_NAMES[cc.type], member: formatId(cc.nodeId), members: this.membership.size }, 'applied membership change');
    const t = this.transport;
    if (cc.nodeId !== this.memberId && t) {
      const rec = this.membership.get(cc.nodeId);
      if (cc.type === ConfChangeType.RemoveNode) t.removePeer(cc.nodeId);
      else if (rec && rec.peerUrls[0]) t.addPeer(cc.nodeId, rec.peerUrls[0]);
    }
    if (ctx) {
      const w = this.confWaiters.get(ctx.reqId);
      if (w) {
        this.confWaiters.delete(ctx.reqId);
        w.resolve(this.membership.get(cc.nodeId) ?? ctx.member);
      }
    }
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.memberId) this.onRemovedSelf();
    return encodeEntryData(EntryKind.Members, 0, this.membership.toJson());
  }

  /** A member published its name and client URLs. */
  private applyAttributesEntry(e: Entry): Buffer {
    try {
      const j = JSON.parse(Buffer.from(e.data.subarray(9)).toString('utf8')) as { id: string; name: string; clientURLs: string[] };
      this.membership.setAttributes(BigInt('0x' + j.id), j.name, j.clientURLs);
    } catch (err) {
      this.log.error({ err, index: e.index }, 'member attributes entry unreadable');
    }
    return encodeEntryData(EntryKind.Members, 0, this.membership.toJson());
  }

  /** etcd stops a member once its own removal is applied; its data dir then refuses to start. */
  private onRemovedSelf(): void {
    if (this.removedSelf) return;
    this.removedSelf = true;
    this.log.warn({ member: formatId(this.memberId) }, 'the member has been permanently removed from the cluster');
    // Let the apply worker store the membership and the answers go out first.
    setTimeout(() => {
      this.stop().then(() => process.exit(0), (err: unknown) => this.fatal('stop after removal failed', err));
    }, 1000).unref();
  }

  // ---- snapshots ----

  /**
   * etcd's --snapshot-count: every that many applied entries the in-memory raft
   * log is cut, keeping the last catch-up entries for slow followers; one further
   * behind gets the state as a snapshot. (The state itself is always in RocksDB,
   * so there is nothing to write: a snapshot is made when a follower asks.)
   */
  private maybeCompactLog(): void {
    const applied = this.raft.appliedIndex();
    if (applied - this.lastLogCompaction <= this.cfg.snapshotCount) return;
    this.lastLogCompaction = applied;
    const to = applied - this.cfg.snapshotCatchupEntries;
    if (to > this.raft.firstIndex()) {
      this.raft.compact(to);
      this.log.info({ compactedTo: to, applied }, 'compacted the raft log');
    }
  }

  /** Leader side: a snapshot file of the current state for a follower (GET /etsd/snapshot on the peer port). */
  private async openSnapshot(): Promise<SnapshotFile | null> {
    if (!this.raft.isLeader() || this.stopping) return null;
    const dir = join(this.memberDir, 'snap');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `out-${process.pid}-${++this.snapshotSeq}.snap`);
    const t0 = performance.now();
    const info = await createSnapshotFile(this.dbHandle, path);
    this.log.info({ index: info.index, bytes: info.bytes, pairs: info.pairs, ms: Math.round(performance.now() - t0) }, 'made a snapshot for a follower');
    return { path, index: info.index, bytes: info.bytes, release: () => rmSync(path, { force: true }) };
  }

  /**
   * Follower side: raft restored a snapshot at `index`; fetch the leader's state
   * (GET /etsd/snapshot on its peer port), have the apply worker check and install
   * it, then let raft go on. Retried (from whoever leads) until it succeeds.
   */
  private receiveSnapshot(index: number): void {
    this.snapshotWanted = Math.max(this.snapshotWanted, index);
    if (this.receivingSnapshot) return; // the running transfer fetches again if it ends below this
    this.receivingSnapshot = true;
    const attempt = async (): Promise<void> => {
      index = this.snapshotWanted;
      const lead = this.raft.lead;
      const url = lead !== 0n && lead !== this.memberId ? this.membership.get(lead)?.peerUrls[0] : undefined;
      if (!url) throw new Error('no leader to fetch the snapshot from');
      const dir = join(this.memberDir, 'snap');
      mkdirSync(dir, { recursive: true });
      const path = join(dir, 'incoming.snap');
      const t0 = performance.now();
      const res = await fetch(new URL('/etsd/snapshot', url), { signal: AbortSignal.timeout(10 * 60_000) });
      if (!res.ok || !res.body) throw new Error(`snapshot fetch from ${url}: HTTP ${res.status}`);
      const at = Number(res.headers.get('x-etsd-snapshot-index'));
      if (!(at >= index)) throw new Error(`the leader's snapshot is at ${at}, raft needs ${index}`);
      await pipeline(Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]), createWriteStream(path));
      const r = await new Promise<SnapshotInstalled>((resolve) => {
        this.snapshotInstalled = resolve;
        this.applyOut.send(encodeInstallSnapshot(path));
      });
      rmSync(path, { force: true });
      if (!r.ok) throw new Error(`snapshot install failed: ${r.error ?? 'unknown error'}`);
      this.afterSnapshotInstall(r);
      this.log.info({ index: r.appliedIndex, revision: r.rev, ms: Math.round(performance.now() - t0) }, 'installed a snapshot from the leader');
    };
    const run = (): void => {
      if (this.stopping) return;
      attempt().then(() => {
        if (this.appliedIndex < this.snapshotWanted) return run();
        this.receivingSnapshot = false;
        for (const u of this.unsynced) u.awaitingSnapshot = false;
        this.releaseDurable();
      }, (err: unknown) => {
        this.log.warn({ err, index }, 'receiving a snapshot failed; retrying');
        setTimeout(run, 1000);
      });
    };
    run();
  }

  private onSnapshotInstalled(r: SnapshotInstalled): void {
    const done = this.snapshotInstalled;
    this.snapshotInstalled = null;
    if (done) done(r);
    else this.log.error({ index: r.appliedIndex }, 'unexpected snapshot install result');
  }

  /** The state machine was replaced: leases, membership and peers follow it. */
  private afterSnapshotInstall(r: SnapshotInstalled): void {
    this.appliedIndex = Math.max(this.appliedIndex, r.appliedIndex);
    this.lessor.replaceAll(r.leases);
    if (r.members !== null) {
      const ms = Membership.fromJson(r.members);
      for (const m of ms.list()) if (m.id !== this.memberId && m.peerUrls[0]) this.transport?.addPeer(m.id, m.peerUrls[0]);
      for (const id of ms.removedIds()) if (id !== this.memberId) this.transport?.removePeer(id);
      this.membership = ms;
      this.noteConf();
    }
    this.releaseReads();
  }

  // ---- membership changes (Cluster service) ----

  /** Runs a membership change on the leader (forwarding it there); resolves with the member's record once applied here. */
  memberOp(op: MemberOp): Promise<MemberRecord> {
    if (this.cfg.strictReconfigCheck) this.checkConnectedQuorum(op);
    const reqId = this.admit();
    return new Promise<MemberRecord>((resolve, reject) => {
      this.confWaiters.set(reqId, { resolve, reject, tReceived: performance.now() });
      if (this.raft.isLeader()) {
        this.proposeMemberOp(op, reqId, this.memberId);
      } else if (this.raft.lead !== 0n && this.transport) {
        this.transport.send([{
          type: MSG_MEMBER_OP as MessageType, from: this.memberId, to: this.raft.lead, term: 0, logTerm: 0, index: 0,
          commit: 0, reject: false, rejectHint: 0, entries: [{ index: 0, term: 0, data: encodeMemberOp(op) }], context: reqId,
        }]);
      } else {
        this.confWaiters.delete(reqId);
        reject(Errors.noLeader());
      }
    });
  }

  private onForwardedMemberOp(m: Message): void {
    const reqId = Number(m.context);
    let op: MemberOp;
    try {
      op = decodeMemberOp(m.entries[0]!.data);
    } catch (err) {
      this.log.warn({ err, from: formatId(m.from) }, 'unreadable forwarded membership change');
      return;
    }
    if (this.raft.isLeader()) this.proposeMemberOp(op, reqId, m.from);
    else this.failMemberOp(reqId, m.from, Errors.notLeader());
  }

  private failMemberOp(reqId: number, origin: bigint, err: EtcdError): void {
    if (origin === this.memberId) {
      const w = this.confWaiters.get(reqId);
      if (w) { this.confWaiters.delete(reqId); w.reject(err); }
      return;
    }
    this.transport?.send([{
      type: MSG_MEMBER_OP_FAILED as MessageType, from: this.memberId, to: origin, term: 0, logTerm: 0, index: 0,
      commit: 0, reject: false, rejectHint: 0, entries: [{ index: 0, term: 0, data: encodeError(err) }], context: reqId,
    }]);
  }

  /** On the leader: checks the change as etcd does and proposes it; one change at a time, so a busy one is retried. */
  private proposeMemberOp(op: MemberOp, reqId: number, origin: bigint, deadline = performance.now() + REQUEST_TIMEOUT_MS): void {
    let cc: ConfChange;
    try {
      cc = this.checkMemberOp(op, reqId);
      this.raft.proposeConfChange(cc);
      this.scheduleReady();
    } catch (err) {
      if (err instanceof ProposalDroppedError && performance.now() < deadline) {
        setTimeout(() => {
          if (this.raft.isLeader()) this.proposeMemberOp(op, reqId, origin, deadline);
          else this.failMemberOp(reqId, origin, Errors.leaderChanged());
        }, this.cfg.heartbeatIntervalMs);
        return;
      }
      if (err instanceof EtcdError) return this.failMemberOp(reqId, origin, err);
      if (err instanceof ProposalDroppedError) return this.failMemberOp(reqId, origin, Errors.timeout());
      if (err instanceof NotLeaderError) return this.failMemberOp(reqId, origin, Errors.leaderChanged());
      throw err;
    }
  }

  /**
   * etcd checks on the member a change arrives at that its own connections do not
   * make the change risky: an addition (learners too) needs every voter reachable from
   * here for the last 5 s (isConnectedFullySince), a removal needs a quorum of the rest
   * (numConnectedSince).
   */
  private checkConnectedQuorum(op: MemberOp): void {
    if (op.kind !== 'add' && op.kind !== 'remove') return;
    const voters = this.membership.voters();
    if (op.kind === 'remove' && (!voters.includes(op.id))) return;
    // A member we are not connected to is down: removing it does not shrink the active quorum.
    if (op.kind === 'remove' && op.id !== this.memberId && (this.transport?.activeSince(op.id) ?? 0) === 0) return;
    const since = Date.now() - HEALTH_INTERVAL_MS;
    const connected = (id: bigint) => {
      if (id === this.memberId) return true;
      const t = this.transport?.activeSince(id) ?? 0;
      return t > 0 && t <= since;
    };
    const active = voters.filter(connected).length;
    if (op.kind === 'add' && active < voters.length) throw Errors.unhealthy();
    if (op.kind === 'remove' && active - 1 < 1 + Math.floor((voters.length - 1) / 2)) throw Errors.unhealthy();
  }

  /** etcd's checks (membership.ValidateConfigurationChange, mayAddMember, mayRemoveMember, mayPromoteMember). */
  private checkMemberOp(op: MemberOp, reqId: number): ConfChange {
    const ms = this.membership;
    const strict = this.cfg.strictReconfigCheck;
    const voters = ms.list().filter((m) => !m.isLearner);
    switch (op.kind) {
      case 'add': {
        if (!validUrls(op.peerUrls)) throw Errors.memberBadUrls();
        if (ms.peerUrlOwner(op.peerUrls)) throw Errors.peerUrlExists();
        if (op.isLearner) {
          if (ms.learners().length >= this.cfg.maxLearners) throw Errors.tooManyLearners();
        } else if (strict) {
          // IsReadyToAddVotingMember: a quorum of the grown cluster must have started.
          const n = voters.length + 1;
          const started = voters.filter((m) => m.name !== '').length;
          if (!(started === 1 && n === 2) && started < Math.floor(n / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        let id = 0n;
        for (let t = Date.now(); id === 0n || ms.has(id) || ms.isRemoved(id); t++) {
          id = computeMemberId(op.peerUrls, this.cfg.initialClusterToken + String(t));
        }
        const member: MemberRecord = { id, name: '', peerUrls: [...op.peerUrls], clientUrls: [], isLearner: op.isLearner };
        return { type: op.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: id, context: encodeConfChangeContext({ reqId, member }) };
      }
      case 'remove': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (strict && !m.isLearner) {
          // IsReadyToRemoveVotingMember: the rest must still have a quorum of started members.
          const rest = voters.filter((v) => v.id !== op.id);
          if (rest.filter((v) => v.name !== '').length < Math.floor(rest.length / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        return { type: ConfChangeType.RemoveNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: m }) };
      }
      case 'update': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (!validUrls(op.peerUrls)) throw Errors.memberBadUrls();
        if (ms.peerUrlOwner(op.peerUrls, op.id)) throw Errors.peerUrlExists();
        return { type: ConfChangeType.UpdateNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: { ...m, peerUrls: [...op.peerUrls] } }) };
      }
      case 'promote': {
        const m = ms.get(op.id);
        if (!m) throw Errors.memberNotFound();
        if (!m.isLearner) throw Errors.memberNotLearner();
        if (strict) {
          // IsReadyToPromoteMember: the learner counts as started in the grown cluster.
          const started = voters.filter((v) => v.name !== '').length + 1;
          if (started < Math.floor((voters.length + 1) / 2) + 1) throw Errors.notEnoughStartedMembers();
        }
        const learnerMatch = this.raft.progress(op.id)?.match ?? 0;
        const leaderMatch = this.raft.progress(this.memberId)?.match ?? this.raft.lastIndex();
        if (learnerMatch < leaderMatch * LEARNER_READY_PERCENT) throw Errors.learnerNotReady();
        return { type: ConfChangeType.AddNode, nodeId: op.id, context: encodeConfChangeContext({ reqId, member: m }) };
      }
    }
  }

  private sendMessages(msgs: Message[]): void {
    if (this.transport && msgs.length > 0) this.transport.send(msgs);
  }

  private durableLoop(ring: Ring): void {
    const loop = async () => {
      while (!this.stopping) {
        let last = -1;
        let barrier = -1;
        ring.drain((view) => {
          const b = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
          last = Math.max(last, b.readDoubleLE(0));
          barrier = Math.max(barrier, b.readDoubleLE(8));
        });
        if (last >= 0) {
          const now = performance.now();
          while (this.inflightDurable < this.inflight.length && this.inflight[this.inflightDurable]!.index <= last) {
            this.inflight[this.inflightDurable++]!.tDurable = now;
          }
        }
        if (barrier >= 0) {
          this.durableBarrier = Math.max(this.durableBarrier, barrier);
          this.releaseDurable();
        }
        await ring.waitReadableAsync(1000);
      }
    };
    loop().catch((err) => this.fatal('durable loop failed', err));
  }

  /** Readies whose writes are durable (and whose snapshot, if any, is installed): tell raft, send their messages. */
  private releaseDurable(): void {
    const out: Message[] = [];
    while (this.unsynced.length > 0 && this.unsynced[0]!.seq <= this.durableBarrier && !this.unsynced[0]!.awaitingSnapshot) {
      const r = this.unsynced.shift()!;
      if (r.point) this.raft.persisted(r.point.index, r.point.term);
      for (const m of r.messages) out.push(m);
    }
    this.sendMessages(out);
    this.processReady();
  }

  private readLoop(ring: Ring): void {
    const loop = async () => {
      while (!this.stopping) {
        // A bounded chunk, then a turn of the event loop: answering a thousand
        // results in one go would hold back every incoming request meanwhile,
        // and the WAL and apply workers would idle until the burst is over.
        if (ring.drain((view) => this.onResult(view), RESULTS_PER_TURN) === RESULTS_PER_TURN) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        await ring.waitReadableAsync(1000);
      }
    };
    loop().catch((err) => this.fatal('result loop failed', err));
  }

  private onResult(view: Uint8Array): void {
    const r = decodeResult(view);
    if (r.type === ResultType.WatchData || r.type === ResultType.WatchPart) {
      const key = `${r.streamId}/${r.watchId}`;
      if (r.type === ResultType.WatchPart) {
        const parts = this.watchParts.get(key);
        if (parts) parts.push(r.body);
        else this.watchParts.set(key, [r.body]);
        return;
      }
      const parts = this.watchParts.get(key);
      if (parts) this.watchParts.delete(key);
      this.sinks.get(r.streamId)?.onWatchData(r.watchId, parts ? Buffer.concat([...parts, r.body]) : r.body);
      return;
    }
    if (r.type === ResultType.Lease) {
      if (r.granted) this.lessor.granted(r.id, r.ttl);
      else this.lessor.revoked(r.id);
      return;
    }
    if (r.type === ResultType.Progress) {
      this.sinks.get(r.streamId)?.onProgress(r.token, r.rev);
      return;
    }
    if (r.type === ResultType.SnapshotInstalled) {
      this.onSnapshotInstalled(r);
      return;
    }
    if (r.type === ResultType.Applied) {
      this.appliedIndex = r.index;
      this.raft.appliedTo(r.index);
      this.maybeCompactLog();
      this.releaseReads();
      if (r.synced) this.walOut.send([opHeader(WAL_RELEASE, r.index, 0)]);
      return;
    }
    const p = this.pending.get(r.reqId);
    if (!p) return; // a request replayed from the log after restart: nobody waits for it
    if (r.type === ResultType.OkPart) {
      (p.parts ??= []).push(r.body);
      return;
    }
    this.pending.delete(r.reqId);
    const tApplied = performance.now();
    if (r.type === ResultType.Ok) p.resolve(p.parts ? Buffer.concat([...p.parts, r.body]) : r.body);
    else p.reject(new EtcdError(r.code, r.message));
    // The response is written by the promise's continuation, which runs before this microtask.
    queueMicrotask(() => this.recordStages(p, tApplied, performance.now()));
  }

  private releaseReads(): void {
    let n = 0;
    while (n < this.waitingReads.length && this.waitingReads[n]!.index <= this.appliedIndex) this.waitingReads[n++]!.send();
    if (n > 0) this.waitingReads.splice(0, n);
  }

  // ---- client requests ----

  private admit(): number {
    if (this.stopping) throw Errors.stopped();
    if (this.pending.size >= this.cfg.maxPendingProposals) throw Errors.tooManyRequests();
    const id = this.nextReqId++;
    return id;
  }

  /**
   * Proposes a write; resolves with the encoded response once applied here.
   * On a follower the entry is forwarded to the leader as it is: it carries
   * our request id, so applying it here answers the request.
   */
  propose(kind: EntryKind, request: Buffer, tReceived = performance.now()): Promise<Buffer> {
    const reqId = this.admit();
    const data = encodeEntryData(kind, reqId, request);
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { resolve, reject, rpc: RPC_OF_KIND[kind], tReceived, tProposed: performance.now(), tDurable: 0, tCommitted: 0, index: 0 };
      if (this.raft.isLeader()) {
        this.pending.set(reqId, p);
        p.index = this.raft.propose(data);
        this.inflight.push(p);
        this.scheduleReady();
      } else if (this.raft.lead !== 0n && this.transport) {
        p.forwarded = true;
        this.pending.set(reqId, p);
        this.transport.send([proposalMessage(this.memberId, this.raft.lead, data)]);
      } else {
        reject(Errors.noLeader());
      }
    });
  }

  private recordStages(p: Pending, tApplied: number, tResponded: number): void {
    const us = (a: number, b: number) => (b - a) * 1000;
    const st = this.stages;
    if (p.forwarded) {
      st.record(p.rpc, 'received->forwarded', us(p.tReceived, p.tProposed));
      st.record(p.rpc, 'forwarded->applied', us(p.tProposed, tApplied));
      st.record(p.rpc, 'applied->responded', us(tApplied, tResponded));
    } else if (p.tDurable > 0) {
      st.record(p.rpc, 'received->proposed', us(p.tReceived, p.tProposed));
      st.record(p.rpc, 'proposed->durable', us(p.tProposed, p.tDurable));
      st.record(p.rpc, 'durable->committed', us(p.tDurable, p.tCommitted));
      st.record(p.rpc, 'committed->applied', us(p.tCommitted, tApplied));
      st.record(p.rpc, 'applied->responded', us(tApplied, tResponded));
    } else if (p.tProposed > 0) {
      // A read: dispatched to a shard at tCommitted (after any read-index wait), served at tApplied.
      st.record(p.rpc, 'received->dispatched', us(p.tReceived, p.tCommitted));
      st.record(p.rpc, 'dispatched->served', us(p.tCommitted, tApplied));
      st.record(p.rpc, 'served->responded', us(tApplied, tResponded));
    }
    if (p.tReceived > 0) st.record(p.rpc, 'total', us(p.tReceived, tResponded));
  }

  /** Serves a Range on a shard; linearizable reads first wait for the read index to apply. */
  range(request: Buffer, serializable: boolean, tReceived = performance.now()): Promise<Buffer> {
    const reqId = this.admit();
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = {
        resolve, reject, rpc: serializable ? 'Range(s)' : 'Range', tReceived, tProposed: tReceived, tDurable: 0, tCommitted: 0, index: 0,
      };
      this.pending.set(reqId, p);
      const send = () => {
        p.tCommitted = performance.now();
        const h = Buffer.allocUnsafe(9);
        h[0] = ShardOp.Range;
        h.writeDoubleLE(reqId, 1);
        const out = this.shardOut[this.nextShard]!;
        this.nextShard = (this.nextShard + 1) % this.shardOut.length;
        out.send([h, request]);
      };
      if (serializable) return send();
      // The learner gate lets Range through; only serializable ones may be served here.
      if (this.learnerSelf) {
        this.pending.delete(reqId);
        reject(Errors.notSupportedForLearner());
        return;
      }
      if (this.soleVoter) {
        const readIndex = this.raft.readIndex();
        if (readIndex <= this.appliedIndex) send();
        else this.waitingReads.push({ index: readIndex, send });
        return;
      }
      if (this.raft.lead === 0n) {
        this.pending.delete(reqId);
        reject(Errors.noLeader());
        return;
      }
      // ReadIndex: the leader confirms it still leads, then the read waits for that index here.
      this.readCtxs.set(reqId, send);
      this.raft.readIndex(reqId);
      this.scheduleReady();
    });
  }

  /**
   * A one-off request to a shard: op | f64 reqId | payload; resolves with the shard's Ok body
   * (or rejects with its error). Shards take turns.
   */
  shardCall(op: ShardOp, payload: Uint8Array, rpc: string): Promise<Buffer> {
    const reqId = this.admit();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject, rpc, tReceived: 0, tProposed: 0, tDurable: 0, tCommitted: 0, index: 0 });
      const h = Buffer.allocUnsafe(9);
      h[0] = op;
      h.writeDoubleLE(reqId, 1);
      this.sendShard(this.nextShard, [h, payload]);
      this.nextShard = (this.nextShard + 1) % this.shardOut.length;
    });
  }

  /** The keys attached to a lease, read by a shard. */
  leaseKeys(id: bigint): Promise<Buffer[]> {
    const idBytes = Buffer.allocUnsafe(8);
    idBytes.writeBigInt64LE(id, 0);
    return this.shardCall(ShardOp.LeaseKeys, idBytes, 'LeaseKeys').then((body) => {
      const keys: Buffer[] = [];
      for (let at = 0; at < body.length;) {
        const n = body.readUInt32LE(at);
        keys.push(body.subarray(at + 4, at + 4 + n));
        at += 4 + n;
      }
      return keys;
    });
  }

  // ---- watch streams (the Watch service drives these) ----

  get shardCount(): number { return this.shardOut.length; }

  openStream(sink: StreamSink): number {
    const id = this.nextStreamId++;
    this.sinks.set(id, sink);
    return id;
  }

  closeStream(streamId: number): void {
    this.sinks.delete(streamId);
  }

  /** Which shard holds a watcher: a hash of (stream, watch id). */
  shardOf(streamId: number, watchId: number): number {
    const h = Math.imul(streamId ^ Math.imul(watchId | 0, 0x9e3779b1), 0x85ebca6b) >>> 0;
    return h % this.shardOut.length;
  }

  /** Counted before the create reaches the shard, so the apply worker starts sending it events first. */
  addWatchers(shard: number, delta: number): void {
    Atomics.add(this.watcherCounts, shard, delta);
  }

  sendShard(shard: number, parts: Uint8Array[]): void {
    this.shardOut[shard]!.send(parts);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.publishTimer) clearInterval(this.publishTimer);
    await this.transport?.stop();
    this.peerHttp?.close();
    for (const w of this.confWaiters.values()) w.reject(Errors.stopped());
    this.confWaiters.clear();
    for (const p of this.pending.values()) p.reject(Errors.stopped());
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A proposal forwarded to the leader (raft's MsgProp: followers do not propose themselves). */
function proposalMessage(from: bigint, to: bigint, data: Uint8Array): Message {
  return {
    type: MessageType.MsgProp, from, to, term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0,
    entries: [{ index: 0, term: 0, data }],
  };
}

function ringBytesFor(largestRecord: number): number {
  let n = 16 * MiB;
  while (n / 2 - 64 < largestRecord) n *= 2;
  return n;
}


function encodeMemberOp(op: MemberOp): Uint8Array {
  const j = 'id' in op ? { ...op, id: formatId(op.id) } : op;
  return Buffer.from(JSON.stringify(j), 'utf8');
}

function decodeMemberOp(data: Uint8Array): MemberOp {
  const j = JSON.parse(Buffer.from(data).toString('utf8')) as { kind: string; id?: string; peerUrls?: string[]; isLearner?: boolean };
  const id = BigInt('0x' + (j.id ?? '0'));
  switch (j.kind) {
    case 'add': return { kind: 'add', peerUrls: j.peerUrls ?? [], isLearner: j.isLearner === true };
    case 'remove': return { kind: 'remove', id };
    case 'update': return { kind: 'update', id, peerUrls: j.peerUrls ?? [] };
    case 'promote': return { kind: 'promote', id };
    default: throw new Error(`unknown membership change ${j.kind}`);
  }
}

/** etcd's types.NewURLs: scheme http/https, host:port, no path. */
function validUrls(urls: string[]): boolean {
  if (urls.length === 0) return false;
  for (const u of urls) {
    let url: URL;
    try { url = new URL(u); } catch { return false; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (url.port === '' || (url.pathname !== '' && url.pathname !== '/')) return false;
  }
  return true;
}

/** Who we are, kept in member/ids.json from the first start (etcd keeps it in its WAL metadata). */
interface StoredIdentity { memberId: bigint; clusterId: bigint; members: MemberRecord[]; joined: boolean }

interface StoredIds {
  memberId: string; clusterId: string; joined?: boolean;
  members?: { id: string; name: string; peerUrls: string[]; clientUrls?: string[]; isLearner?: boolean }[];
}

/**
 * IDs and the initial membership come from the first start's flags (as etcd
 * derives them), or, joining an existing cluster, from its other members.
 */
async function loadOrCreateIds(memberDir: string, cfg: Config): Promise<StoredIdentity> {
  const file = join(memberDir, 'ids.json');
  if (existsSync(file)) {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StoredIds;
    const memberId = BigInt('0x' + s.memberId);
    const members: MemberRecord[] = s.members?.map((m) => ({
      id: BigInt('0x' + m.id), name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls ?? [], isLearner: m.isLearner === true,
    })) ?? [{ id: memberId, name: cfg.name, peerUrls: cfg.initialAdvertisePeerUrls, clientUrls: [], isLearner: false }];
    return { memberId, clusterId: BigInt('0x' + s.clusterId), members, joined: s.joined === true };
  }
  let ids: StoredIdentity;
  if (cfg.initialClusterState === 'existing') {
    const j = await fetchClusterFromPeers(cfg);
    ids = { memberId: j.memberId, clusterId: j.clusterId, members: j.members, joined: true };
  } else {
    const members: MemberRecord[] = [...cfg.initialCluster].map(([name, urls]) => ({
      id: computeMemberId(urls, cfg.initialClusterToken), name, peerUrls: urls, clientUrls: [], isLearner: false,
    }));
    const memberId = computeMemberId(cfg.initialAdvertisePeerUrls, cfg.initialClusterToken);
    if (!members.some((m) => m.id === memberId)) {
      throw new Error(`--initial-advertise-peer-urls ${cfg.initialAdvertisePeerUrls.join(',')} do not match the URLs of "${cfg.name}" in --initial-cluster`);
    }
    ids = { memberId, clusterId: computeClusterId(members.map((m) => m.id)), members, joined: false };
  }
  const tmp = file + '.tmp';
  writeFileSync(tmp, JSON.stringify({
    memberId: formatId(ids.memberId), clusterId: formatId(ids.clusterId), joined: ids.joined,
    members: ids.members.map((m) => ({ id: formatId(m.id), name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner })),
  } satisfies StoredIds));
  renameSync(tmp, file);
  return ids;
}
