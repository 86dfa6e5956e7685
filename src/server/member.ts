import { Worker } from 'node:worker_threads';
import { mkdirSync, readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { computeClusterId, computeMemberId, formatId } from '../common/ids.js';
import { RaftNode } from '../raft/node.js';
import type { Entry } from '../raft/types.js';
import { Ring } from '../workers/ring/ring.js';
import { Outbox } from '../workers/outbox.js';
import {
  EntryKind, ResultType, Shared, ShardOp, WAL_LAZY, WAL_RELEASE, decodeResult, encodeEntryData, sharedState, storeShared,
} from '../workers/messages.js';
import type { ApplyReady, ApplyWorkerData } from '../workers/apply-worker.js';
import type { WalReady, WalWorkerData } from '../workers/wal-worker.js';
import type { ShardWorkerData } from '../workers/shard-worker.js';
import { RecordType } from '../storage/wal/record.js';
import { encodeHardState } from '../storage/wal/recover.js';
import { EtcdError, Errors } from './errors.js';
import { IdGenerator, Lessor } from './lessor.js';
import { StageHistograms } from './metrics/stages.js';
import { dirBytes } from './metrics/prometheus.js';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../common/shared-histogram.js';

const MiB = 1024 * 1024;
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
}

const RPC_OF_KIND: Record<EntryKind, string> = {
  [EntryKind.Noop]: 'Noop', [EntryKind.Put]: 'Put', [EntryKind.DeleteRange]: 'DeleteRange', [EntryKind.Txn]: 'Txn',
  [EntryKind.Compaction]: 'Compact', [EntryKind.LeaseGrant]: 'LeaseGrant', [EntryKind.LeaseRevoke]: 'LeaseRevoke',
};

/** Where a shard's output for one watch stream goes (the Watch service's per-stream state). */
export interface StreamSink {
  onWatchData(watchId: number, body: Buffer): void;
  onProgress(token: number, rev: number): void;
}
interface WaitingRead { index: number; send: () => void }

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
  private lastHardState: { term: number; vote: bigint } | null = null;
  private stopping = false;

  private constructor(readonly cfg: Config, readonly log: Logger, ids: { memberId: bigint; clusterId: bigint }) {
    this.memberId = ids.memberId;
    this.clusterId = ids.clusterId;
    this.leaseIds = new IdGenerator(ids.memberId);
    // Request ids only need to be unique among this process's in-flight requests;
    // a random base keeps them apart from ids replayed from the log after restart.
    this.nextReqId = Math.floor(Math.random() * 2 ** 40) * 1024;
  }

  static async start(cfg: Config, log: Logger): Promise<Member> {
    const memberDir = join(cfg.dataDir, 'member');
    mkdirSync(memberDir, { recursive: true });
    const m = new Member(cfg, log, loadOrCreateIds(memberDir, cfg));
    await m.boot(memberDir);
    return m;
  }

  get raftTerm(): number { return this.raft.term; }
  get commitIndex(): number { return this.raft.commit; }
  get appliedIdx(): number { return this.appliedIndex; }
  get pendingCount(): number { return this.pending.size; }
  get compactRevision(): number { return Number(Atomics.load(this.state, Shared.CompactRevision)); }
  get watcherTotal(): number { let n = 0; for (let i = 0; i < this.watcherCounts.length; i++) n += Atomics.load(this.watcherCounts, i); return n; }
  isLeaderKnown(): boolean { return this.raft.isLeader(); }
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
    this.appliedIndex = applied.appliedIndex;
    for (const l of applied.leases) this.lessor.granted(l.id, l.ttl);
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
      voters: [this.memberId],
      // A fresh member bootstraps at term 1, as etcd does, so its first election makes term 2.
      hardState: {
        term: Math.max(recovered.log.hardState.term, applied.appliedIndex === 0 && entries.length === 0 ? 1 : 0),
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

    this.raft.campaign();
    storeShared(this.state, Shared.RaftTerm, this.raft.term);
    this.log.info({ term: this.raft.term, member: formatId(this.memberId), cluster: formatId(this.clusterId) }, 'became leader');
    this.scheduleReady();
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
    const toWal: Uint8Array[][] = rd.entries.map((e) => [walHeader(RecordType.Entry, e.index, e.term), e.data]);
    if (rd.hardState) {
      const hs = rd.hardState;
      // Raft needs term and vote durable before it acts on them; a new commit
      // index alone may ride along with the next fsync (etcd persists it the
      // same way), so it does not cost an fsync of its own.
      const lazy = this.lastHardState !== null && this.lastHardState.term === hs.term && this.lastHardState.vote === hs.vote;
      this.lastHardState = { term: hs.term, vote: hs.vote };
      toWal.push([walHeader(RecordType.HardState | (lazy ? WAL_LAZY : 0), 0, hs.term),
        encodeHardState({ term: hs.term, vote: Number(hs.vote), commit: hs.commit })]);
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
        return [h, e.data];
      }));
    }
  }

  private durableLoop(ring: Ring): void {
    const loop = async () => {
      while (!this.stopping) {
        let last = -1;
        ring.drain((view) => {
          last = Math.max(last, Buffer.from(view.buffer, view.byteOffset, view.byteLength).readDoubleLE(0));
        });
        if (last >= 0) {
          const now = performance.now();
          while (this.inflightDurable < this.inflight.length && this.inflight[this.inflightDurable]!.index <= last) {
            this.inflight[this.inflightDurable++]!.tDurable = now;
          }
          this.raft.persisted(last);
          this.processReady();
        }
        await ring.waitReadableAsync(1000);
      }
    };
    loop().catch((err) => this.fatal('durable loop failed', err));
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
    if (r.type === ResultType.Applied) {
      this.appliedIndex = r.index;
      this.raft.appliedTo(r.index);
      this.releaseReads();
      if (r.synced) this.walOut.send([walHeader(WAL_RELEASE, r.index, 0)]);
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

  /** Proposes a write; resolves with the encoded response once applied. */
  propose(kind: EntryKind, request: Buffer, tReceived = performance.now()): Promise<Buffer> {
    const reqId = this.admit();
    const data = encodeEntryData(kind, reqId, request);
    return new Promise<Buffer>((resolve, reject) => {
      const p: Pending = { resolve, reject, rpc: RPC_OF_KIND[kind], tReceived, tProposed: performance.now(), tDurable: 0, tCommitted: 0, index: 0 };
      this.pending.set(reqId, p);
      p.index = this.raft.propose(data);
      this.inflight.push(p);
      this.scheduleReady();
    });
  }

  private recordStages(p: Pending, tApplied: number, tResponded: number): void {
    const us = (a: number, b: number) => (b - a) * 1000;
    const st = this.stages;
    if (p.tDurable > 0) {
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
      const readIndex = serializable ? 0 : this.raft.readIndex();
      if (readIndex <= this.appliedIndex) send();
      else this.waitingReads.push({ index: readIndex, send });
    });
  }

  /** The keys attached to a lease, read by a shard. */
  leaseKeys(id: bigint): Promise<Buffer[]> {
    const reqId = this.admit();
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject, rpc: 'LeaseKeys', tReceived: 0, tProposed: 0, tDurable: 0, tCommitted: 0, index: 0 });
      const h = Buffer.allocUnsafe(17);
      h[0] = ShardOp.LeaseKeys;
      h.writeDoubleLE(reqId, 1);
      h.writeBigInt64LE(id, 9);
      this.sendShard(this.nextShard, [h]);
      this.nextShard = (this.nextShard + 1) % this.shardOut.length;
    }).then((body) => {
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
    for (const p of this.pending.values()) p.reject(Errors.stopped());
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function ringBytesFor(largestRecord: number): number {
  let n = 16 * MiB;
  while (n / 2 - 64 < largestRecord) n *= 2;
  return n;
}

function walHeader(type: number, index: number, term: number): Buffer {
  const h = Buffer.allocUnsafe(17);
  h[0] = type;
  h.writeDoubleLE(index, 1);
  h.writeDoubleLE(term, 9);
  return h;
}

interface StoredIds { memberId: string; clusterId: string }

/** IDs are derived from the first start's flags and then kept, as etcd keeps them in its WAL. */
function loadOrCreateIds(memberDir: string, cfg: Config): { memberId: bigint; clusterId: bigint } {
  const file = join(memberDir, 'ids.json');
  if (existsSync(file)) {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StoredIds;
    return { memberId: BigInt('0x' + s.memberId), clusterId: BigInt('0x' + s.clusterId) };
  }
  const memberId = computeMemberId(cfg.initialAdvertisePeerUrls, cfg.initialClusterToken);
  const clusterId = computeClusterId([memberId]);
  const tmp = file + '.tmp';
  writeFileSync(tmp, JSON.stringify({ memberId: formatId(memberId), clusterId: formatId(clusterId) } satisfies StoredIds));
  renameSync(tmp, file);
  return { memberId, clusterId };
}
