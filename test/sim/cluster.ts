// A seeded simulation of an N-node raft cluster: a virtual clock, a network that
// drops, delays, duplicates and reorders messages and can be partitioned, an
// asynchronous WAL per node, crashes that lose whatever was not durable, and clients
// proposing (at any node: followers forward) and reading. Each node runs the
// production ReadyDriver (src/raft/driver.ts), so what is simulated is the member's
// own persist/send ordering: the leader's early appends, barriers, lazy hard state,
// the snapshot hold and proposal forwarding. Safety properties are checked after
// every event.
//
// The WAL model: persist() appends writes in order; a write carrying a barrier becomes
// durable [1, maxWalDelay] units after the previous one (FIFO, pipelined like group
// commit), and with it every write before it. A lazy write (only a commit-index hard
// state, no barrier) is durable only once a later barrier syncs: a crash before that
// loses it, so a node may restart with an older commit index (safe: it is recomputed).
// A snapshot raft restored is durable (its metadata, and the data, as etcd saves the
// snapshot file before the WAL record) with its ready's barrier; the install into the
// state machine completes separately, some time later.
import { RaftNode, NONE } from '../../src/raft/node.js';
import { ReadyDriver, type PersistWrites, type ReadySink } from '../../src/raft/driver.js';
import { makeRng } from '../../src/raft/rng.js';
import { decodeConfChange } from '../../src/raft/confchange.js';
import {
  ConfChangeType, EntryType, MessageType, NotLeaderError, ProposalDroppedError, Role,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type ReadState, type SnapshotMeta,
} from '../../src/raft/types.js';

export interface SimConfig {
  seed: number;
  /** Voters at start: ids 1..nodes. */
  nodes: number;
  /** Further ids (nodes+1..nodes+spare) that run but start outside the membership. */
  spare: number;
  /** Time units per node tick. */
  tickUnits: number;
  electionTick: number;
  heartbeatTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  /** Network: delivery delay in [1, maxDelay] units; drops and duplicates. */
  maxDelay: number;
  dropRate: number;
  dupRate: number;
  /** WAL: a write completes [1, maxWalDelay] units after the previous one (FIFO). */
  maxWalDelay: number;
  /** Per-unit probabilities of random actions (random runs only). */
  proposeRate: number;
  readRate: number;
  crashRate: number;
  restartRate: number;
  partitionRate: number;
  healRate: number;
  compactRate: number;
  transferRate: number;
  confChangeRate: number;
  /**
   * Per-unit probability that a node's transport reports a peer it cannot reach (down, or
   * cut off by a partition: a wrong report) as gone (RaftNode.reportLeaderGone).
   */
  goneRate: number;
  /** Probability that a crash or partition targets the leader. */
  leaderBias: number;
  /** Keep a trace of events (for printing a failing seed). */
  trace: boolean;
  /**
   * Check at each crash that what the node acknowledged is durable (the direct check of
   * THE RULE). Off, only the consequences are checked (lost commits, divergent logs).
   */
  checkAcks: boolean;
}

export const defaults: SimConfig = {
  seed: 1, nodes: 3, spare: 0, tickUnits: 10, electionTick: 10, heartbeatTick: 1, preVote: true, checkQuorum: true,
  maxInflightMsgs: 256, maxSizePerMsg: 1 << 20, maxDelay: 5, dropRate: 0, dupRate: 0, maxWalDelay: 3,
  proposeRate: 0, readRate: 0, crashRate: 0, restartRate: 0, partitionRate: 0, healRate: 0, compactRate: 0,
  transferRate: 0, confChangeRate: 0, goneRate: 0, leaderBias: 0, trace: false, checkAcks: true,
};

export class SimError extends Error {
  override name = 'SimError';
}

/** A write handed to the node's WAL and not yet durable; barrier null: a lazy write. */
interface Write extends PersistWrites { barrier: number | null }

/** Builds the driver of a node (tests inject a faulty one to show the simulator catches it). */
export type MakeDriver = (raft: RaftNode, sink: ReadySink) => ReadyDriver;

interface SimNode {
  id: bigint;
  up: boolean;
  raft: RaftNode;
  driver: ReadyDriver;
  /** Incremented at each crash: events of an earlier life are void. */
  epoch: number;
  // durable state
  dHard: HardState;
  dSnap: SnapshotMeta;
  dLog: Entry[];
  // volatile
  writes: Write[];
  lastWriteAt: number;
  appliedIndex: number;
  commitSeen: number;
  wasLeaderTerm: number;
  /** The latest snapshot raft restored and the state machine has not yet installed. */
  installing: SnapshotMeta | null;
  /** The sender of the last MsgSnap delivered here (who learns when its transfer ends). */
  snapFrom: { id: bigint; epoch: number } | null;
  /** The highest index this life acknowledged (MsgAppResp) in the term `ackTerm`: it promised it durable. */
  ackIndex: number;
  ackTerm: number;
}

interface PendingProposal { node: bigint; epoch: number; index: number; id: string }
interface PendingRead { node: bigint; epoch: number; minIndex: number; at: number }

type Event =
  | { k: 'deliver'; m: Message; fromEpoch: number }
  | { k: 'sync'; node: bigint; epoch: number; seq: number }
  | { k: 'install'; node: bigint; epoch: number; index: number }
  | { k: 'snapStatus'; node: bigint; epoch: number; to: bigint; ok: boolean };

const enc = new TextEncoder();
const dec = new TextDecoder();
const NAMES = MessageType as unknown as Record<number, string>;

export class Cluster {
  readonly cfg: SimConfig;
  now = 0;
  readonly nodes = new Map<bigint, SimNode>();
  private readonly rng: () => number;
  private readonly buckets = new Map<number, Event[]>();
  /** Partition: node -> group; messages cross groups only if both are in the same group. */
  private group = new Map<bigint, number>();
  readonly traceLog: string[] = [];

  // global knowledge for the checks
  private readonly entryIds = new Map<string, { id: string; prevTerm: number }>();
  private readonly committedTerm: number[] = [];
  maxCommit = 0;
  private readonly appliedIds: string[] = [];
  private readonly leaders = new Map<number, bigint>();
  private readonly pendingProps = new Map<string, PendingProposal>();
  readonly acked: { index: number; id: string }[] = [];
  private readonly reads = new Map<number, PendingRead>();
  private nextProp = 0;
  private nextRead = 1;
  private readonly makeDriver: MakeDriver;
  stats = {
    proposed: 0, acked: 0, readsServed: 0, readsAsked: 0, crashes: 0, snapshotsSent: 0, elections: 0, msgs: 0, confChanges: 0, transfers: 0,
    /** Proposals a follower forwarded (MsgProp), and those acknowledged to their client at the follower. */
    forwarded: 0, forwardedAcked: 0, forwardDropped: 0,
    /** Leader appends sent before the leader's own copy was durable (rule 2). */
    earlyApps: 0,
    /** Lazy writes (commit-only hard state, no barrier), and those a crash lost. */
    lazyWrites: 0, lazyLost: 0,
    /** Snapshots installed; snapshot transfers reported to the leader (ok / failed). */
    installs: 0, snapReportsOk: 0, snapReportsFailed: 0,
    /** Leader-gone reports a follower acted on (the leader crashed, or only cut off: wrong). */
    goneReports: 0, goneWrong: 0,
  };

  constructor(cfg: Partial<SimConfig>, opts: { makeDriver?: MakeDriver } = {}) {
    this.cfg = { ...defaults, ...cfg };
    this.makeDriver = opts.makeDriver ?? ((raft, sink) => new ReadyDriver(raft, sink));
    this.rng = makeRng(this.cfg.seed);
    const voters: bigint[] = [];
    for (let i = 1; i <= this.cfg.nodes; i++) voters.push(BigInt(i));
    for (let i = 1; i <= this.cfg.nodes + this.cfg.spare; i++) {
      const id = BigInt(i);
      // Every node starts from the bootstrap membership (the conf at index 0); spare nodes are
      // not in it, so they stay passive until a conf change adds them.
      const conf: ConfState = { voters: [...voters], learners: [] };
      const n: SimNode = {
        id, up: true, epoch: 0, dHard: { term: 0, vote: NONE, commit: 0 }, dSnap: { index: 0, term: 0, conf },
        dLog: [], writes: [], lastWriteAt: 0, appliedIndex: 0, commitSeen: 0, wasLeaderTerm: 0,
        raft: undefined as unknown as RaftNode, driver: undefined as unknown as ReadyDriver, installing: null, snapFrom: null, ackIndex: 0, ackTerm: 0,
      };
      this.boot(n);
      this.nodes.set(id, n);
      this.group.set(id, 0);
    }
  }

  // ---- helpers ----

  private rand(n: number): number { return Math.floor(this.rng() * n); }
  private chance(p: number): boolean { return p > 0 && this.rng() < p; }
  private pick<T>(xs: T[]): T | undefined { return xs.length > 0 ? xs[this.rand(xs.length)] : undefined; }

  trace(s: string): void {
    if (this.cfg.trace) this.traceLog.push(`${this.now} ${s}`);
  }

  fail(msg: string): never {
    throw new SimError(`seed ${this.cfg.seed} t=${this.now}: ${msg}`);
  }

  /** A fresh raft core and driver from the node's durable state. */
  private boot(n: SimNode): void {
    n.raft = new RaftNode({
      id: n.id, voters: n.dSnap.conf.voters, learners: n.dSnap.conf.learners, hardState: { ...n.dHard },
      entries: n.dLog, applied: { index: n.dSnap.index, term: n.dSnap.term }, snapshot: n.dSnap,
      electionTick: this.cfg.electionTick, heartbeatTick: this.cfg.heartbeatTick, preVote: this.cfg.preVote,
      checkQuorum: this.cfg.checkQuorum, maxInflightMsgs: this.cfg.maxInflightMsgs, maxSizePerMsg: this.cfg.maxSizePerMsg,
      retainApplied: Infinity, rng: makeRng((this.cfg.seed * 7919 + Number(n.id) * 104729 + n.epoch * 31) >>> 0),
    });
    n.driver = this.makeDriver(n.raft, this.sinkFor(n, n.epoch));
  }

  node(id: bigint | number): SimNode {
    const n = this.nodes.get(BigInt(id));
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: bigint | number): RaftNode { return this.node(id).raft; }

  /** The live leader with the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.up && n.raft.role === Role.Leader && (!best || n.raft.term > best.raft.term)) best = n;
    }
    return best;
  }

  private schedule(at: number, e: Event): void {
    const q = this.buckets.get(at);
    if (q) q.push(e);
    else this.buckets.set(at, [e]);
  }

  private connected(a: bigint, b: bigint): boolean { return this.group.get(a) === this.group.get(b); }

  // ---- faults (scripted or random) ----

  /** Splits the cluster: each listed group can talk only within itself; unlisted nodes are isolated. */
  partition(groups: (bigint | number)[][]): void {
    let g = 1;
    for (const id of this.nodes.keys()) this.group.set(id, -Number(id));
    for (const grp of groups) {
      for (const id of grp) this.group.set(BigInt(id), g);
      g++;
    }
    this.trace(`partition ${groups.map((x) => x.join(',')).join(' | ')}`);
  }

  heal(): void {
    for (const id of this.nodes.keys()) this.group.set(id, 0);
    this.trace('heal');
  }

  crash(id: bigint | number): void {
    const n = this.node(id);
    if (!n.up) return;
    n.up = false;
    n.epoch++;
    // An acknowledgement promised the entries durable: they must survive the crash (in the
    // term of the promise, the leader never truncates what it was told is stored).
    const durableLast = n.dSnap.index + n.dLog.length;
    if (this.cfg.checkAcks && n.ackTerm === n.raft.term && n.ackIndex > durableLast) {
      this.fail(`durability: node ${n.id} acknowledged up to ${n.ackIndex} in term ${n.ackTerm} but crashes with a durable log to ${durableLast}`);
    }
    n.ackIndex = 0;
    n.ackTerm = 0;
    // Not yet durable: lost, with the messages that waited for them (the driver dies with the node).
    for (const w of n.writes) if (w.barrier === null) this.stats.lazyLost++;
    n.writes = [];
    n.installing = null;
    n.snapFrom = null;
    this.stats.crashes++;
    this.trace(`crash ${n.id}`);
  }

  /**
   * Node `at`'s transport reports `peer` gone, as its refused dials do in production (the
   * driver's reportLeaderGone). Wrong when `peer` is up (only cut off by a partition).
   */
  peerGone(at: bigint | number, peer: bigint | number): void {
    const n = this.node(at);
    if (!n.up) return;
    if (!n.driver.reportLeaderGone(BigInt(peer))) return;
    const wrong = this.node(peer).up;
    this.stats.goneReports++;
    if (wrong) this.stats.goneWrong++;
    this.trace(`gone ${peer} reported to ${n.id}${wrong ? ' (wrong: it is up)' : ''}`);
    this.process(n);
  }

  restart(id: bigint | number): void {
    const n = this.node(id);
    if (n.up) return;
    n.up = true;
    this.boot(n);
    n.appliedIndex = n.dSnap.index;
    n.commitSeen = n.raft.commit;
    n.lastWriteAt = this.now;
    n.wasLeaderTerm = 0;
    this.trace(`restart ${n.id} term=${n.dHard.term} commit=${n.dHard.commit} snap=${n.dSnap.index} last=${n.raft.lastIndex()}`);
    this.process(n);
  }

  // ---- clients ----

  /**
   * A client proposal at node id, through its driver: the leader appends it (returns its
   * index), a follower forwards it to the leader (returns null; acknowledged when the
   * follower applies it). Null too if refused (no leader, transfer in progress).
   */
  propose(id: bigint | number, payload?: string): number | null {
    const n = this.node(id);
    if (!n.up) return null;
    const pid = payload ?? `p${this.nextProp++}`;
    try {
      const index = n.driver.propose(enc.encode(pid));
      // A forwarded proposal's index is the leader's to choose: -1 matches the first one applied.
      this.pendingProps.set(pid, { node: n.id, epoch: n.epoch, index: index ?? -1, id: pid });
      this.stats.proposed++;
      if (index === null) this.stats.forwarded++;
      this.trace(`propose ${pid} at ${n.id} -> ${index ?? `forwarded to ${n.raft.lead}`}`);
      this.process(n);
      return index;
    } catch (e) {
      if (e instanceof NotLeaderError || e instanceof ProposalDroppedError) return null;
      throw e;
    }
  }

  proposeConfChange(id: bigint | number, cc: ConfChange): number | null {
    const n = this.node(id);
    if (!n.up) return null;
    try {
      const index = n.raft.proposeConfChange(cc);
      this.stats.confChanges++;
      this.trace(`confchange ${cc.type === ConfChangeType.AddNode ? 'add' : cc.type === ConfChangeType.RemoveNode ? 'remove' : 'learner'} ${cc.nodeId} at ${n.id} -> ${index}`);
      this.process(n);
      return index;
    } catch (e) {
      if (e instanceof NotLeaderError || e instanceof ProposalDroppedError) return null;
      throw e;
    }
  }

  /** A linearizable read at node id; returns its context, or null if refused. */
  read(id: bigint | number): number | null {
    const n = this.node(id);
    if (!n.up) return null;
    const ctx = this.nextRead++;
    try {
      // The read must see every commit made before it started.
      this.reads.set(ctx, { node: n.id, epoch: n.epoch, minIndex: this.maxCommit, at: this.now });
      n.raft.readIndex(ctx);
      this.stats.readsAsked++;
      this.trace(`read ${ctx} at ${n.id} min=${this.maxCommit}`);
      this.process(n);
      return ctx;
    } catch (e) {
      this.reads.delete(ctx);
      if (e instanceof NotLeaderError) return null;
      throw e;
    }
  }

  readsServed(): number { return this.stats.readsServed; }

  transfer(to: bigint | number): void {
    const l = this.leader();
    if (!l) return;
    this.stats.transfers++;
    this.trace(`transfer ${l.id} -> ${to}`);
    l.raft.transferLeader(BigInt(to));
    this.process(l);
  }

  /** The application at id takes a snapshot at `index` (default: its applied index) and compacts. */
  compact(id: bigint | number, index?: number): void {
    const n = this.node(id);
    if (!n.up) return;
    const at = Math.min(index ?? n.appliedIndex, n.appliedIndex, n.raft.appliedIndex());
    if (at <= n.raft.firstIndex() - 1) return;
    n.raft.compact(at);
    // The snapshot and the WAL truncation are durable at once (the data is the applied prefix).
    n.dSnap = n.raft.snapshotMeta();
    n.dLog = n.dLog.filter((e) => e.index > at);
    this.trace(`compact ${n.id} at ${at}`);
  }

  // ---- the loop ----

  run(units: number): void {
    const end = this.now + units;
    while (this.now < end) this.stepOnce(false);
  }

  /** Runs until pred() holds (checked every unit) or `units` pass; returns whether it held. */
  runUntil(pred: () => boolean, units: number): boolean {
    const end = this.now + units;
    while (this.now < end) {
      if (pred()) return true;
      this.stepOnce(false);
    }
    return pred();
  }

  stepOnce(random: boolean): void {
    if (random) this.randomActions();
    const ids = [...this.nodes.keys()];
    for (let i = 0; i < ids.length; i++) {
      const n = this.nodes.get(ids[i]!)!;
      if (n.up && this.now % this.cfg.tickUnits === (i * 3) % this.cfg.tickUnits) {
        n.raft.tick();
        this.process(n);
      }
    }
    const q = this.buckets.get(this.now);
    if (q) {
      for (let i = 0; i < q.length; i++) this.handle(q[i]!);
      this.buckets.delete(this.now);
    }
    this.now++;
  }

  private randomActions(): void {
    const c = this.cfg;
    const all = [...this.nodes.values()];
    const up = all.filter((n) => n.up);
    if (this.chance(c.proposeRate)) { const n = this.pick(up); if (n) this.propose(n.id); }
    if (this.chance(c.readRate)) { const n = this.pick(up); if (n) this.read(n.id); }
    if (this.chance(c.crashRate)) {
      // Leaders crash more often than their share: that is where durability bugs show.
      const l = this.leader();
      const n = l && this.chance(c.leaderBias) ? l : this.pick(up);
      if (n) this.crash(n.id);
    }
    if (this.chance(c.restartRate)) { const n = this.pick(all.filter((x) => !x.up)); if (n) this.restart(n.id); }
    if (this.chance(c.partitionRate)) {
      const ids = [...this.nodes.keys()];
      for (let i = ids.length - 1; i > 0; i--) { const j = this.rand(i + 1); [ids[i], ids[j]] = [ids[j]!, ids[i]!]; }
      const l = this.leader();
      if (l && this.chance(c.leaderBias)) {
        // Isolate the leader (it keeps taking proposals: a divergent suffix to overwrite later).
        this.partition([[l.id], ids.filter((x) => x !== l.id)]);
        return;
      }
      const cut = 1 + this.rand(ids.length - 1);
      if (this.chance(0.3)) this.partition([ids.slice(0, cut)]); // the rest isolated one by one
      else this.partition([ids.slice(0, cut), ids.slice(cut)]);
    }
    if (this.chance(c.healRate)) this.heal();
    if (this.chance(c.compactRate)) {
      const n = this.pick(up);
      if (n) this.compact(n.id, n.appliedIndex - this.rand(4));
    }
    if (this.chance(c.transferRate)) {
      const l = this.leader();
      const to = l && this.pick(l.raft.conf().voters.filter((v) => v !== l.id));
      if (to !== undefined) this.transfer(to);
    }
    if (this.chance(c.confChangeRate)) this.randomConfChange();
    // Drawn only when on, so seeds without it replay as before.
    if (c.goneRate > 0 && this.chance(c.goneRate)) {
      const n = this.pick(up);
      const p = n && this.pick(all.filter((x) => x !== n && (!x.up || !this.connected(n.id, x.id))));
      if (n && p) this.peerGone(n.id, p.id);
    }
  }

  private randomConfChange(): void {
    const l = this.leader();
    if (!l) return;
    const conf = l.raft.conf();
    const ids = [...this.nodes.keys()];
    const id = this.pick(ids)!;
    let cc: ConfChange;
    if (conf.voters.includes(id)) {
      // Removing below 3 voters makes the random faults too likely to stall the run.
      if (conf.voters.length <= 3 || id === l.id) return;
      cc = { type: ConfChangeType.RemoveNode, nodeId: id };
    } else if (conf.learners.includes(id)) {
      cc = { type: this.chance(0.7) ? ConfChangeType.AddNode : ConfChangeType.RemoveNode, nodeId: id };
    } else {
      cc = { type: this.chance(0.5) ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode, nodeId: id };
    }
    this.proposeConfChange(l.id, cc);
  }

  private handle(e: Event): void {
    if (e.k === 'deliver') {
      const m = e.m;
      const to = this.nodes.get(m.to);
      if (!to || !to.up || !this.connected(m.from, m.to)) {
        // The leader's transport learns that a snapshot did not get through.
        if (m.type === MessageType.MsgSnap) this.reportSnapshotLater(m.from, e.fromEpoch, m.to, false);
        return;
      }
      if (this.cfg.trace) this.trace(`deliver ${fmtMsg(m)}`);
      const installingBefore = to.installing;
      if (m.type === MessageType.MsgSnap) to.snapFrom = { id: m.from, epoch: e.fromEpoch };
      to.driver.step(m);
      this.process(to);
      // A snapshot the follower did not need (it had the entries) ends its transfer at once;
      // one it restored ends when the install completes.
      if (m.type === MessageType.MsgSnap && to.up && to.installing === installingBefore) {
        this.reportSnapshotLater(m.from, e.fromEpoch, m.to, true);
      }
      return;
    }
    const n = this.nodes.get(e.node)!;
    if (!n.up || n.epoch !== e.epoch) return;
    if (e.k === 'snapStatus') {
      if (e.ok) this.stats.snapReportsOk++;
      else this.stats.snapReportsFailed++;
      this.trace(`snapshot to ${e.to} ${e.ok ? 'delivered' : 'failed'} (at ${n.id})`);
      n.driver.reportSnapshot(e.to, e.ok);
      this.process(n);
      return;
    }
    if (e.k === 'install') {
      const s = n.installing;
      // An earlier install overtaken by a newer restore: the newer one's event finishes it.
      if (!s || s.index !== e.index) return;
      if (s.index < n.appliedIndex) this.fail(`node ${n.id} installs snapshot ${s.index} below its applied ${n.appliedIndex}`);
      n.installing = null;
      n.appliedIndex = s.index;
      this.stats.installs++;
      this.trace(`installed ${n.id} snapshot ${s.index}/${s.term}`);
      const from = n.snapFrom;
      n.snapFrom = null;
      n.driver.onSnapshotInstalled();
      if (from) this.reportSnapshotLater(from.id, from.epoch, n.id, true);
      this.process(n);
      return;
    }
    // A sync: every write up to the one carrying barrier e.seq is durable now.
    const at = n.writes.findIndex((w) => w.barrier === e.seq);
    if (at < 0) this.fail(`sync of barrier ${e.seq} with no such write at ${n.id}`);
    for (const w of n.writes.splice(0, at + 1)) this.makeDurable(n, w);
    n.driver.onDurable(e.seq);
    this.process(n);
  }

  /** The leader (if still the same life) hears how the snapshot transfer to `to` ended. */
  private reportSnapshotLater(leader: bigint, epoch: number, to: bigint, ok: boolean): void {
    this.schedule(this.now + 1 + this.rand(this.cfg.maxDelay), { k: 'snapStatus', node: leader, epoch, to, ok });
  }

  private makeDurable(n: SimNode, w: Write): void {
    if (w.snapshot) {
      n.dSnap = { index: w.snapshot.index, term: w.snapshot.term, conf: w.snapshot.conf };
      n.dLog = [];
    }
    for (const e of w.entries) {
      if (e.index <= n.dSnap.index) this.fail(`node ${n.id} writes entry ${e.index} at or below its snapshot ${n.dSnap.index}`);
      // A later entry overwrites one with the same index and everything after it.
      const keep = e.index - n.dSnap.index - 1;
      if (keep > n.dLog.length) this.fail(`node ${n.id} WAL gap: entry ${e.index} after ${n.dSnap.index + n.dLog.length}`);
      n.dLog.length = keep;
      n.dLog.push(e);
    }
    if (w.hardState) {
      const last = n.dSnap.index + n.dLog.length;
      if (w.hardState.commit > last) this.fail(`node ${n.id} persists commit ${w.hardState.commit} beyond its durable log ${last}`);
      n.dHard = { ...w.hardState };
    }
  }

  private sendMsg(m: Message): void {
    this.stats.msgs++;
    const fromEpoch = this.nodes.get(m.from)?.epoch ?? 0;
    if (m.type === MessageType.MsgSnap) this.stats.snapshotsSent++;
    if (!this.connected(m.from, m.to) || this.chance(this.cfg.dropRate)) {
      if (m.type === MessageType.MsgSnap) this.reportSnapshotLater(m.from, fromEpoch, m.to, false);
      return;
    }
    this.schedule(this.now + 1 + this.rand(this.cfg.maxDelay), { k: 'deliver', m, fromEpoch });
    if (this.chance(this.cfg.dupRate)) this.schedule(this.now + 1 + this.rand(this.cfg.maxDelay * 2), { k: 'deliver', m, fromEpoch });
  }

  // ---- readies: the node's driver and its sink (the modelled WAL, network, state machine) ----

  private process(n: SimNode): void {
    if (!n.up) return;
    n.driver.processReady();
    if (n.up) this.checkNode(n);
  }

  /** The I/O side of node n in life `epoch`: what the member does with its WAL worker, transport and apply worker. */
  private sinkFor(n: SimNode, epoch: number): ReadySink {
    const live = (): boolean => n.up && n.epoch === epoch;
    return {
      persist: (w, barrier) => { if (live()) this.persist(n, w, barrier); },
      send: (msgs) => {
        if (!live()) return;
        for (const m of msgs) {
          if (m.type === MessageType.MsgApp && m.entries.length > 0 && m.entries[m.entries.length - 1]!.index > n.raft.durableIndex()) this.stats.earlyApps++;
          if (m.type === MessageType.MsgAppResp && !m.reject && m.term >= n.ackTerm) {
            n.ackIndex = m.term > n.ackTerm ? m.index : Math.max(n.ackIndex, m.index);
            n.ackTerm = m.term;
          }
          this.sendMsg(m);
        }
      },
      apply: (committed) => {
        if (!live()) return;
        // The snapshot hold keeps raft from handing out entries above a snapshot not yet installed.
        if (n.installing) this.fail(`node ${n.id} got entries ${committed[0]!.index}.. to apply before installing snapshot ${n.installing.index}`);
        for (const e of committed) this.apply(n, e);
        n.raft.appliedTo(n.appliedIndex);
      },
      readStates: (rs) => { if (live()) this.readStates(n, rs); },
      restoreSnapshot: (s) => { if (live()) this.restoreSnapshot(n, s); },
      proposalDropped: (m) => {
        this.stats.forwardDropped++;
        this.trace(`dropped forwarded proposal ${m.entries.map((e) => dec.decode(e.data)).join(',')} at ${n.id}`);
      },
    };
  }

  private persist(n: SimNode, w: PersistWrites, barrier: number | null): void {
    const r = n.raft;
    // Log matching: an (index, term) always names the same entry with the same predecessor term.
    for (const e of w.entries) {
      const prevTerm = r.termAt(e.index - 1) ?? -1;
      const key = `${e.index}:${e.term}`;
      const id = entryId(e);
      const known = this.entryIds.get(key);
      if (!known) this.entryIds.set(key, { id, prevTerm });
      else if (known.id !== id || (known.prevTerm !== prevTerm && prevTerm !== -1 && known.prevTerm !== -1)) {
        this.fail(`log matching: node ${n.id} has ${key}=${id} prev ${prevTerm}, seen ${known.id} prev ${known.prevTerm}`);
      }
    }
    if (barrier === null) {
      if (w.entries.length > 0 || w.snapshot || (w.hardState && !w.lazy)) this.fail(`node ${n.id}: a write that needs a sync got no barrier`);
      this.stats.lazyWrites++;
    }
    if (w.hardState) this.trace(`persist ${n.id} hs=${w.hardState.term}/${w.hardState.vote}/${w.hardState.commit}${w.lazy ? ' lazy' : ''} ents=${w.entries.length ? `${w.entries[0]!.index}..${w.entries[w.entries.length - 1]!.index}` : '-'} barrier=${barrier ?? '-'}`);
    n.writes.push({ ...w, barrier });
    if (barrier === null) return;
    // Syncs complete in order, each 1..maxWalDelay units after it was issued (group commit
    // pipelines them: a sync does not wait for the previous one's full latency).
    n.lastWriteAt = Math.max(n.lastWriteAt, this.now + 1 + this.rand(this.cfg.maxWalDelay));
    this.schedule(n.lastWriteAt, { k: 'sync', node: n.id, epoch: n.epoch, seq: barrier });
  }

  private restoreSnapshot(n: SimNode, s: SnapshotMeta): void {
    if (s.index > this.appliedIds.length) this.fail(`node ${n.id} restores snapshot ${s.index} beyond anything applied (${this.appliedIds.length})`);
    if (this.committedTerm[s.index] !== undefined && this.committedTerm[s.index] !== s.term) {
      this.fail(`snapshot ${s.index}/${s.term} disagrees with committed term ${this.committedTerm[s.index]}`);
    }
    this.trace(`restore ${n.id} snapshot ${s.index}/${s.term} voters=${s.conf.voters} learners=${s.conf.learners}`);
    n.installing = { index: s.index, term: s.term, conf: s.conf };
    // Fetching and installing the leader's state takes a while (and may outlast a later restore).
    this.schedule(this.now + 1 + this.rand(2 * this.cfg.maxWalDelay + this.cfg.maxDelay), { k: 'install', node: n.id, epoch: n.epoch, index: s.index });
  }

  private readStates(n: SimNode, rss: ReadState[]): void {
    for (const rs of rss) {
      const ctx = Number(rs.requestCtx);
      const rq = this.reads.get(ctx);
      if (!rq) continue; // duplicate answer
      this.reads.delete(ctx);
      if (rq.node !== n.id) this.fail(`read ${ctx} answered at ${n.id}, asked at ${rq.node}`);
      if (rs.index < rq.minIndex) this.fail(`stale read ${ctx} at ${n.id}: read index ${rs.index} < commit ${rq.minIndex} known when it started`);
      this.stats.readsServed++;
      this.trace(`read ${ctx} at ${n.id} index=${rs.index}`);
    }
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.appliedIndex + 1) this.fail(`node ${n.id} applies ${e.index} after ${n.appliedIndex}`);
    const id = entryId(e);
    const known = this.appliedIds[e.index - 1];
    if (known === undefined) {
      if (e.index !== this.appliedIds.length + 1) this.fail(`node ${n.id} applies ${e.index} but only ${this.appliedIds.length} known applied`);
      this.appliedIds.push(id);
    } else if (known !== id) {
      this.fail(`state machine safety: node ${n.id} applies ${id} at ${e.index}, another applied ${known}`);
    }
    n.appliedIndex = e.index;
    if (e.type === EntryType.ConfChange) {
      const cs = n.raft.applyConfChange(decodeConfChange(e.data));
      this.trace(`applyconf ${n.id} at ${e.index} voters=${cs.voters} learners=${cs.learners}`);
    } else if (e.data.length > 0) {
      const pid = dec.decode(e.data);
      const p = this.pendingProps.get(pid);
      if (p && p.node === n.id && p.epoch === n.epoch && (p.index === e.index || p.index === -1)) {
        this.pendingProps.delete(pid);
        this.acked.push({ index: e.index, id });
        this.stats.acked++;
        if (p.index === -1) this.stats.forwardedAcked++;
      }
    }
  }

  // ---- checks ----

  private checkNode(n: SimNode): void {
    const r = n.raft;
    // Election safety: one leader per term.
    if (r.role === Role.Leader) {
      const l = this.leaders.get(r.term);
      if (l === undefined) {
        this.leaders.set(r.term, n.id);
        this.stats.elections++;
      } else if (l !== n.id) this.fail(`election safety: ${l} and ${n.id} both lead term ${r.term}`);
      if (n.wasLeaderTerm !== r.term) {
        n.wasLeaderTerm = r.term;
        this.trace(`leader ${n.id} term ${r.term} last=${r.lastIndex()} commit=${r.commit}`);
        // Leader completeness: every committed entry is in the new leader's log.
        if (r.lastIndex() < this.maxCommit) this.fail(`leader completeness: leader ${n.id} term ${r.term} last ${r.lastIndex()} < committed ${this.maxCommit}`);
        for (let i = r.firstIndex(); i <= this.maxCommit; i++) this.checkHas(n, i, 'new leader');
      }
    }
    // Commit: newly committed entries agree with everything committed anywhere.
    if (r.commit > n.commitSeen) {
      if (r.commit > r.lastIndex()) this.fail(`node ${n.id} commit ${r.commit} beyond last ${r.lastIndex()}`);
      for (let i = Math.max(n.commitSeen + 1, r.firstIndex()); i <= r.commit; i++) {
        const t = r.termAt(i)!;
        const known = this.committedTerm[i];
        if (known === undefined) {
          this.committedTerm[i] = t;
          // It was committed in r.term at the latest (a commit index only travels within a
          // term), so every leader of a later term must already hold it. (Not the entry's own
          // term: a stale leader elected before the commit may lack it.)
          for (const o of this.nodes.values()) if (o.up && o.raft.role === Role.Leader && o.raft.term > r.term) this.checkHas(o, i, 'later leader');
        } else if (known !== t) this.fail(`commit safety: node ${n.id} commits ${i}/${t}, committed elsewhere with term ${known}`);
      }
      n.commitSeen = r.commit;
      if (r.commit > this.maxCommit) this.maxCommit = r.commit;
    }
  }

  private checkHas(n: SimNode, i: number, what: string): void {
    const r = n.raft;
    if (i < r.firstIndex()) return; // compacted: committed by construction
    const t = this.committedTerm[i];
    if (t !== undefined && r.termAt(i) !== t) this.fail(`leader completeness (${what}): ${n.id} term ${r.term} has ${i}/${r.termAt(i)}, committed ${i}/${t}`);
  }

  /** Every acknowledged write is applied, identically, at every node that applied that far. */
  checkAcked(): void {
    for (const a of this.acked) {
      if (this.appliedIds[a.index - 1] !== a.id) this.fail(`acknowledged ${a.id} at ${a.index} lost: applied ${this.appliedIds[a.index - 1]}`);
    }
  }

  /** Members (voters and learners) of the latest configuration known to the leader. */
  members(): bigint[] {
    const l = this.leader();
    const cs = l ? l.raft.conf() : { voters: [...this.nodes.keys()].slice(0, this.cfg.nodes), learners: [] };
    return [...cs.voters, ...cs.learners];
  }

  /**
   * Liveness once faults stop: within `bound` units a leader is elected, a proposal
   * commits and every member applies it.
   */
  checkLiveness(bound: number): void {
    const start = this.now;
    const pid = `live${this.cfg.seed}`;
    const tries: number[] = [];
    const committed = () => tries.find((i) => this.appliedIds[i - 1]?.endsWith(`/${pid}`));
    let lastTry = -Infinity;
    while (this.now < start + bound) {
      const i = committed();
      if (i !== undefined && this.leader() && this.members().every((id) => this.node(id).appliedIndex >= i)) return;
      const l = this.leader();
      if (i === undefined && l && this.now - lastTry >= 200) {
        // (Re)propose at the current leader until one attempt commits.
        const at = this.propose(l.id, pid);
        if (at !== null) { tries.push(at); lastTry = this.now; }
      }
      this.stepOnce(false);
    }
    const st = [...this.nodes.values()].map((n) => `${n.id}:${n.up ? 'up' : 'down'} role=${n.raft.role} term=${n.raft.term} lead=${n.raft.lead} last=${n.raft.lastIndex()} commit=${n.raft.commit} applied=${n.appliedIndex} conf=${JSON.stringify(n.raft.conf(), (_k, v) => (typeof v === 'bigint' ? Number(v) : v))}`);
    this.fail(`liveness: no progress within ${bound} units after faults stopped (tries ${tries}); ${st.join('; ')}`);
  }

  /** Heals everything: no partition, no drops, every node up. */
  calm(): void {
    this.heal();
    this.cfg.dropRate = 0;
    this.cfg.dupRate = 0;
    for (const n of this.nodes.values()) if (!n.up) this.restart(n.id);
  }
}

function entryId(e: Entry): string {
  if (e.type === EntryType.ConfChange) return `${e.term}/cc${[...e.data].join('.')}`;
  return `${e.term}/${dec.decode(e.data)}`;
}

export function fmtMsg(m: Message): string {
  let s = `${NAMES[m.type]} ${m.from}->${m.to} t${m.term}`;
  if (m.type === MessageType.MsgApp) s += ` prev=${m.index}/${m.logTerm} n=${m.entries.length} commit=${m.commit}`;
  else if (m.type === MessageType.MsgAppResp) s += m.reject ? ` reject ${m.index} hint=${m.rejectHint}/${m.logTerm}` : ` ack ${m.index}`;
  else if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) s += ` last=${m.index}/${m.logTerm}`;
  else if (m.type === MessageType.MsgVoteResp || m.type === MessageType.MsgPreVoteResp) s += m.reject ? ' reject' : ' grant';
  else if (m.type === MessageType.MsgHeartbeat) s += ` commit=${m.commit}`;
  else if (m.type === MessageType.MsgSnap) s += ` snap=${m.snapshot?.index}/${m.snapshot?.term}`;
  if (m.context !== undefined) s += ` ctx=${m.context}`;
  return s;
}

/** The random-run configuration for a seed: faults and knobs drawn from the seed. */
export function randomConfig(seed: number, nodes: number, overrides: Partial<SimConfig> = {}): SimConfig {
  const r = makeRng((seed ^ 0xa5a5a5a5) >>> 0);
  // Half the seeds are "nasty": slow WAL, frequent leader crashes and isolations.
  const nasty = r() < 0.5;
  return {
    ...defaults,
    seed,
    nodes,
    spare: r() < 0.3 ? 1 : 0,
    maxInflightMsgs: 1 + Math.floor(r() * 8),
    maxSizePerMsg: r() < 0.5 ? 8 : 1 << 20,
    maxDelay: 2 + Math.floor(r() * 20),
    dropRate: r() * 0.15,
    dupRate: r() * 0.05,
    maxWalDelay: 1 + Math.floor(r() * (nasty ? 40 : 15)),
    proposeRate: 0.02 + r() * (nasty ? 0.2 : 0.08),
    readRate: r() * 0.03,
    crashRate: r() * (nasty ? 0.01 : 0.003),
    leaderBias: nasty ? 0.6 : 0.2,
    restartRate: nasty ? 0.03 : 0.01,
    partitionRate: r() * (nasty ? 0.01 : 0.003),
    healRate: nasty ? 0.01 : 0.004,
    compactRate: r() * 0.01,
    transferRate: r() * 0.001,
    confChangeRate: r() < 0.3 ? 0.002 : 0,
    // Drawn last, so every earlier knob of a seed stays as it was.
    goneRate: r() < 0.5 ? 0 : r() * 0.02,
    ...overrides,
  };
}

export interface SeedResult {
  seed: number;
  ok: boolean;
  error?: string;
  trace?: string[];
  stats?: Cluster['stats'];
}

/** One random run: `faultUnits` of random faults and traffic, then calm and a liveness bound. */
export function runSeed(seed: number, nodes: number, opts: { faultUnits?: number; liveness?: number; trace?: boolean; makeDriver?: MakeDriver; config?: Partial<SimConfig> } = {}): SeedResult {
  const c = new Cluster(randomConfig(seed, nodes, { trace: opts.trace ?? false, ...opts.config }), { makeDriver: opts.makeDriver });
  try {
    const faultUnits = opts.faultUnits ?? 3000;
    while (c.now < faultUnits) c.stepOnce(true);
    c.calm();
    c.checkLiveness(opts.liveness ?? 4000);
    c.checkAcked();
    return { seed, ok: true, stats: c.stats };
  } catch (e) {
    return { seed, ok: false, error: e instanceof Error ? `${e.message}\n${e.stack}` : String(e), trace: c.traceLog, stats: c.stats };
  }
}
