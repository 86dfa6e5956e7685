// Workloads that ride on gRPC streams: watch-latency and lease-keepalive.
import type { BenchConfig } from './config.js';
import { keyName } from './config.js';
import type { UnaryCallback, BidiStream } from './conn.js';
import { messages, encodeFramed, PATHS } from './proto.js';
import { makeTemplate, TemplateWriter } from './templates.js';
import type { Workload, WorkloadCtx, Op } from './workload.js';

/** Share of `total` for thread `idx` of `n`. */
function share(total: number, idx: number, n: number): number {
  return Math.floor(total / n) + (idx < total % n ? 1 : 0);
}

/**
 * watch-latency (etcd: `benchmark watch-latency`): the clients put to one key
 * (at --rate, default 100/s); --watchers streams watch that key. Each put's
 * value starts with its send time (float64 ms), so every delivered event
 * gives a put -> watch-delivery latency without any bookkeeping.
 */
export class WatchLatency implements Workload {
  readonly opNames = ['put', 'watch'] as const;
  private writer!: TemplateWriter;
  private readonly streams: BidiStream[] = [];
  private canceled = 0;
  constructor(private readonly cfg: BenchConfig) {}

  async prepare(ctx: WorkloadCtx): Promise<void> {
    const M = messages();
    const key = Buffer.from(keyName(this.cfg, 0), 'latin1');
    const t = makeTemplate(M.PutRequest, Math.max(8, this.cfg.valSize), (value) => ({ key, value }));
    this.writer = new TemplateWriter(t, ctx.clientConn.length);
    const create = encodeFramed(M.WatchRequest, { createRequest: { key } });
    const n = share(this.cfg.watchers, ctx.threadIndex, ctx.threadCount);
    const created: Promise<void>[] = [];
    for (let w = 0; w < n; w++) {
      const conn = ctx.conns[w % ctx.conns.length]!;
      created.push(new Promise<void>((resolve, reject) => {
        const s = conn.stream(PATHS.watch, (msg) => {
          const r = M.WatchResponse.decode(msg) as unknown as { created: boolean; canceled: boolean; events: { kv?: { value: Buffer } }[] };
          if (r.created) resolve();
          if (r.canceled) this.canceled++;
          const now = ctx.now();
          for (const ev of r.events) {
            const v = ev.kv?.value;
            if (v && v.length >= 8) ctx.record(1, Math.round((now - v.readDoubleLE(0)) * 1000));
          }
        }, (status, message) => reject(new Error(`watch stream ended: ${status} ${message}`)));
        s.write(create);
        this.streams.push(s);
      }));
    }
    await Promise.all(created);
  }

  next(client: number, op: Op): void {
    op.op = 0; op.path = PATHS.put;
    op.body = this.writer.withTime(client, performance.timeOrigin + performance.now());
  }

  counters(): Record<string, number> { return { watchCanceled: this.canceled }; }

  close(): void {
    for (const s of this.streams) s.close();
  }
}

/**
 * lease-keepalive (etcd: `benchmark lease-keepalive`): each client grants a
 * lease, then sends LeaseKeepAliveRequests on its own stream, one at a time.
 */
export class LeaseKeepAlive implements Workload {
  readonly opNames = ['keepalive'] as const;
  private bodies: Buffer[] = [];
  private streams: BidiStream[] = [];
  private pending: (UnaryCallback | null)[] = [];

  async prepare(ctx: WorkloadCtx): Promise<void> {
    const M = messages();
    const grant = encodeFramed(M.LeaseGrantRequest, { TTL: 60 });
    await Promise.all(ctx.clientConn.map(async (ci, client) => {
      const conn = ctx.conns[ci]!;
      const r = M.LeaseGrantResponse.decode(await conn.unaryAsync(PATHS.leaseGrant, grant)) as unknown as { ID: unknown };
      this.bodies[client] = encodeFramed(M.LeaseKeepAliveRequest, { ID: r.ID });
      this.pending[client] = null;
      this.streams[client] = conn.stream(PATHS.leaseKeepAlive, (msg) => this.settle(client, 0, '', msg),
        (status, message) => this.settle(client, status === 0 ? -1 : status, message || 'keepalive stream ended', null));
    }));
  }

  private settle(client: number, status: number, message: string, payload: Buffer | null): void {
    const cb = this.pending[client];
    this.pending[client] = null;
    if (cb) cb(status, message, payload);
  }

  next(client: number, op: Op): void {
    op.op = 0; op.path = PATHS.leaseKeepAlive; op.body = this.bodies[client]!;
  }

  send(client: number, op: Op, cb: UnaryCallback): void {
    const s = this.streams[client]!;
    if (s.closed) { cb(-1, 'keepalive stream closed', null); return; }
    this.pending[client] = cb;
    s.write(op.body);
  }

  close(): void {
    for (const s of this.streams) s.close();
  }
}
