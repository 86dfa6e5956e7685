// The member's worker threads and the rings between them: the apply worker
// (the MVCC writer), the WAL worker and the shard workers. Starts them in the
// order recovery needs, and takes the member down if any of them dies: a
// member with a dead worker must not stay half-alive.

import { quotaBytes } from '../storage/mvcc/quota.js';
import { Worker } from 'node:worker_threads';
import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { ETCD_DISK_BUCKETS, SharedHistogram } from '../common/shared-histogram.js';
import { Ring } from '../workers/ring/ring.js';
import { Outbox } from '../workers/outbox.js';
import type { BusyPoll } from './busy-poll.js';
import { Shared } from '../workers/protocol/shared-state.js';
import { readDurableNotice } from '../workers/protocol/wal-ring.js';
import type { ApplyReady, ApplyWorkerData } from '../workers/apply-worker.js';
import type { WalReady, WalWorkerData } from '../workers/wal-worker.js';
import type { ShardWorkerData } from '../workers/shard-worker.js';

const MiB = 1024 * 1024;
const WAL_SEGMENT_BYTES = 64 * MiB;
/** Result and event rings: large enough for bursts; producers block (workers) or queue (main) when full. */
const RESULT_RING_BYTES = 16 * MiB;

/** A ring record may be at most half a ring: inbound rings must hold the largest request. */
function ringBytesFor(largestRecord: number): number {
  let n = 16 * MiB;
  while (n / 2 - 64 < largestRecord) n *= 2;
  return n;
}

export class WorkerSet {
  readonly shared = new SharedArrayBuffer(Shared.Size * 8);
  readonly fsyncHistogram = SharedHistogram.allocate(ETCD_DISK_BUCKETS);
  readonly commitHistogram = SharedHistogram.allocate(ETCD_DISK_BUCKETS);
  readonly watcherCounts: Int32Array;
  applyOut!: Outbox;
  walOut!: Outbox;
  readonly shardOut: Outbox[] = [];
  /** The apply worker's results and the WAL's durable notices, for the member's loops. */
  applyResults!: Ring;
  walResults!: Ring;
  readonly shardResults: Ring[] = [];
  private readonly workers: Worker[] = [];
  private readonly inboundBytes: number;
  private readonly eventRings: SharedArrayBuffer[];
  private readonly doorbells: SharedArrayBuffer[];
  private readonly countsSab: SharedArrayBuffer;
  /** WAL -> apply: entries committed by their own durability; the doorbell the apply worker waits on. */
  private readonly directRing: SharedArrayBuffer;
  private readonly applyDoorbell = new SharedArrayBuffer(4);
  private stopping = false;
  private onDurable: ((lastIndex: number, barrier: number) => void) | null = null;

  constructor(private readonly cfg: Config, private readonly log: Logger, private readonly ids: { clusterId: bigint; memberId: bigint }) {
    this.inboundBytes = ringBytesFor(cfg.maxRequestBytes + 1 * MiB);
    this.directRing = Ring.allocate(this.inboundBytes);
    this.eventRings = Array.from({ length: cfg.shards }, () => Ring.allocate(RESULT_RING_BYTES));
    this.doorbells = Array.from({ length: cfg.shards }, () => new SharedArrayBuffer(4));
    this.countsSab = new SharedArrayBuffer(4 * cfg.shards);
    this.watcherCounts = new Int32Array(this.countsSab);
  }

  /** The apply worker opens RocksDB and reports what it recovered. */
  async startApply(dbDir: string): Promise<ApplyReady> {
    const inRing = Ring.allocate(this.inboundBytes);
    const outRing = Ring.allocate(RESULT_RING_BYTES);
    const ready = this.spawn<ApplyReady>('apply-worker.js', {
      dbDir, clusterId: this.ids.clusterId, memberId: this.ids.memberId,
      shared: this.shared, inRing, outRing, directRing: this.directRing, doorbell: this.applyDoorbell, eventRings: this.eventRings, doorbells: this.doorbells, watcherCounts: this.countsSab,
      commitHistogram: this.commitHistogram,
      quotaBytes: quotaBytes(this.cfg.quotaBackendBytes),
    } satisfies ApplyWorkerData, 'apply');
    this.applyOut = new Outbox(new Ring(inRing, { doorbell: this.applyDoorbell }), this.ringFailed);
    this.applyResults = new Ring(outRing);
    return ready;
  }

  /** The WAL worker recovers the raft log (repairing a torn tail). */
  async startWal(walDir: string): Promise<WalReady> {
    const inRing = Ring.allocate(this.inboundBytes);
    const outRing = Ring.allocate(1 * MiB);
    const ready = this.spawn<WalReady>('wal-worker.js', {
      walDir, segmentBytes: WAL_SEGMENT_BYTES, inRing, outRing,
      directRing: this.directRing, applyDoorbell: this.applyDoorbell,
      fsyncHistogram: this.fsyncHistogram,
    } satisfies WalWorkerData, 'wal');
    this.walOut = new Outbox(new Ring(inRing), this.ringFailed);
    this.walResults = new Ring(outRing);
    return ready;
  }

  /** Shard workers read through the apply worker's database handle. */
  async startShards(dbHandle: bigint): Promise<void> {
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < this.cfg.shards; i++) {
      const inRing = Ring.allocate(this.inboundBytes);
      const outRing = Ring.allocate(RESULT_RING_BYTES);
      ready.push(this.spawn<unknown>('shard-worker.js', {
        shardId: i, handle: dbHandle, clusterId: this.ids.clusterId, memberId: this.ids.memberId,
        shared: this.shared, inRing, outRing, eventRing: this.eventRings[i]!, doorbell: this.doorbells[i]!,
        maxRequestBytes: this.cfg.maxRequestBytes, progressNotifyMs: this.cfg.watchProgressNotifyIntervalMs,
      } satisfies ShardWorkerData, `shard-${i}`));
      this.shardOut.push(new Outbox(new Ring(inRing, { doorbell: this.doorbells[i]! }), this.ringFailed));
      this.shardResults.push(new Ring(outRing));
    }
    await Promise.all(ready);
  }

  /** Feeds the WAL's durable notices to onDurable(last entry index, last barrier) for as long as the member runs. */
  startDurableLoop(onDurable: (lastIndex: number, barrier: number) => void, poll: BusyPoll): void {
    this.onDurable = onDurable;
    const ring = this.walResults;
    poll.watch(ring);
    const loop = async () => {
      while (!this.stopping) {
        this.pollDurable();
        if (poll.shouldPoll()) await new Promise<void>((resolve) => setImmediate(resolve));
        else await ring.waitReadableAsync(1000);
      }
    };
    loop().catch((err) => this.fatal('durable loop failed', err));
  }

  /**
   * Hands on the durable notices waiting now. The apply results loop calls it first: the
   * WAL worker writes its notice before it hands direct entries to the apply worker, so
   * raft hears an entry is durable before its answer goes out.
   */
  pollDurable(): void {
    if (!this.onDurable) return;
    let last = -1;
    let barrier = -1;
    this.walResults.drain((view) => {
      const n = readDurableNotice(view);
      last = Math.max(last, n.lastIndex);
      barrier = Math.max(barrier, n.barrier);
    });
    if (last >= 0 || barrier >= 0) this.onDurable(last, barrier);
  }

  get running(): boolean { return !this.stopping; }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  fatal(what: string, err: unknown): never {
    this.log.fatal({ err }, what);
    process.exit(1);
  }

  private readonly ringFailed = (err: unknown): void => this.fatal('ring drain failed', err);

  private spawn<T>(file: string, data: unknown, name: string): Promise<T> {
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
    return ready;
  }
}
