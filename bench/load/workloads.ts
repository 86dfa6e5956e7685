// The workloads, named after etcd's tools/benchmark commands where one exists.
import type { BenchConfig, WorkloadName } from './config.js';
import { keyName } from './config.js';
import { messages, encodeFramed, PATHS, toNum } from './proto.js';
import { makeTemplate, TemplateWriter, randomValue } from './templates.js';
import type { Workload, WorkloadCtx, Op } from './workload.js';
import { forEachOwned, prefixEnd } from './workload.js';
import { WatchLatency, LeaseKeepAlive } from './streams.js';
import { authenticateBody, parseUser } from './auth.js';

/** Picks the key index for the n-th request of this thread. */
class KeyPicker {
  private seq = 0;
  constructor(private readonly cfg: BenchConfig, private readonly threadIndex: number, private readonly threadCount: number) {}
  next(): number {
    const c = this.cfg;
    if (c.sequentialKeys) return (this.seq++ * this.threadCount + this.threadIndex) % c.keySpaceSize;
    return Math.floor(Math.random() * c.keySpaceSize);
  }
}

function putBody(value: Buffer) {
  return (key: Buffer): Record<string, unknown> => ({ key, value });
}

async function prefillKeys(ctx: WorkloadCtx, value: Buffer): Promise<void> {
  const M = messages();
  await forEachOwned(ctx, ctx.cfg.keySpaceSize, 32, async (i, conn) => {
    await conn.unaryAsync(PATHS.put, encodeFramed(M.PutRequest, { key: Buffer.from(keyName(ctx.cfg, i), 'latin1'), value }));
  });
}

/** put: PutRequest to sequential or random keys of the key space. */
class PutWorkload implements Workload {
  readonly opNames = ['put'] as const;
  private writer!: TemplateWriter;
  private keys!: KeyPicker;
  constructor(private readonly cfg: BenchConfig) {}
  async prepare(ctx: WorkloadCtx): Promise<void> {
    const t = makeTemplate(messages().PutRequest, this.cfg.keySize, putBody(randomValue(this.cfg.valSize)));
    this.writer = new TemplateWriter(t, ctx.clientConn.length);
    this.keys = new KeyPicker(this.cfg, ctx.threadIndex, ctx.threadCount);
  }
  next(client: number, op: Op): void {
    op.op = 0; op.path = PATHS.put;
    op.body = this.writer.withString(client, keyName(this.cfg, this.keys.next()));
  }
}

/** txn-put: a TxnRequest with --txn-ops puts and no compares. */
class TxnPutWorkload implements Workload {
  readonly opNames = ['txn-put'] as const;
  private writers: TemplateWriter[] = [];
  private readonly picked: number[] = [];
  private keys!: KeyPicker;
  constructor(private readonly cfg: BenchConfig) {}
  async prepare(ctx: WorkloadCtx): Promise<void> {
    const value = randomValue(this.cfg.valSize);
    // One template per op slot, so each put in the txn gets its own key.
    for (let slot = 0; slot < this.cfg.txnOps; slot++) {
      const fixed = (s: number): Buffer => Buffer.from(keyName(this.cfg, s), 'latin1');
      const t = makeTemplate(messages().TxnRequest, this.cfg.keySize, (hole) => ({
        success: Array.from({ length: this.cfg.txnOps }, (_, s) => ({ requestPut: { key: s === slot ? hole : fixed(s), value } })),
      }));
      this.writers.push(new TemplateWriter(t, ctx.clientConn.length));
    }
    this.keys = new KeyPicker(this.cfg, ctx.threadIndex, ctx.threadCount);
  }
  next(client: number, op: Op): void {
    op.op = 0; op.path = PATHS.txn;
    if (this.writers.length === 1) {
      op.body = this.writers[0]!.withString(client, keyName(this.cfg, this.keys.next()));
      return;
    }
    // Several puts: copy slot 0's template and patch each slot's hole.
    // etcd rejects a txn that puts the same key twice: draw distinct keys.
    const picked = this.picked;
    picked.length = 0;
    while (picked.length < this.writers.length) {
      const k = this.keys.next();
      if (!picked.includes(k) || picked.length >= this.cfg.keySpaceSize) picked.push(k);
    }
    const buf = this.writers[0]!.withString(client, keyName(this.cfg, picked[0]!));
    for (let s = 1; s < this.writers.length; s++) {
      buf.write(keyName(this.cfg, picked[s]!), this.writers[s]!.t.holes[0]!, this.cfg.keySize, 'latin1');
    }
    op.body = buf;
  }
}

/** range: one key or [key, range_end), linearizable (l) or serializable (s). */
class RangeWorkload implements Workload {
  readonly opNames = ['range'] as const;
  private fixed: Buffer | null = null;
  private writer: TemplateWriter | null = null;
  private keys!: KeyPicker;
  constructor(private readonly cfg: BenchConfig) {}
  async prepare(ctx: WorkloadCtx): Promise<void> {
    const c = this.cfg;
    const M = messages();
    // Only set fields go on the wire: etcd 3.4 reads a present but empty
    // range_end as "to the end of the keyspace", unlike an absent one.
    const base: Record<string, unknown> = {};
    if (c.rangeEnd !== '') base.rangeEnd = Buffer.from(c.rangeEnd, 'latin1');
    if (c.rangeLimit > 0) base.limit = c.rangeLimit;
    if (c.consistency === 's') base.serializable = true;
    if (c.prefill) await prefillKeys(ctx, randomValue(c.valSize));
    if (c.rangeKey !== '') this.fixed = encodeFramed(M.RangeRequest, { ...base, key: Buffer.from(c.rangeKey, 'latin1') });
    else this.writer = new TemplateWriter(makeTemplate(M.RangeRequest, c.keySize, (key) => ({ ...base, key })), ctx.clientConn.length);
    this.keys = new KeyPicker(c, ctx.threadIndex, ctx.threadCount);
  }
  next(client: number, op: Op): void {
    op.op = 0; op.path = PATHS.range;
    op.body = this.fixed ?? this.writer!.withString(client, keyName(this.cfg, this.keys.next()));
  }
}

const KUBE_UPDATE = 0, KUBE_GET = 1, KUBE_LIST = 2;

/**
 * kube: what the Kubernetes API server sends etcd. update = Txn(if
 * mod_revision(key) == last seen then put else get), as GuaranteedUpdate does;
 * get = Range of one key; list = Range over the prefix with a limit. Keys are
 * split between threads so threads do not fight over the same objects;
 * a failed compare (conflict) refreshes the cached mod_revision.
 */
class KubeWorkload implements Workload {
  readonly opNames = ['update', 'get', 'list'] as const;
  private modRev!: Float64Array;
  private value!: Buffer;
  private getWriter!: TemplateWriter;
  private listBody!: Buffer;
  private owned: number[] = [];
  private conflicts = 0;
  private weights: number[] = [];
  constructor(private readonly cfg: BenchConfig) {}

  private key(i: number): Buffer { return Buffer.from(keyName(this.cfg, i), 'latin1'); }

  private txn(i: number): Buffer {
    const key = this.key(i);
    const ser = this.cfg.consistency === 's' ? { serializable: true } : {};
    // modRevision is a oneof member: set even when 0, as Go clients do.
    return encodeFramed(messages().TxnRequest, {
      compare: [{ result: 0, target: 2, key, modRevision: this.modRev[i] }],
      success: [{ requestPut: { key, value: this.value } }],
      failure: [{ requestRange: { key, ...ser } }],
    });
  }

  async prepare(ctx: WorkloadCtx): Promise<void> {
    const c = this.cfg;
    const M = messages();
    this.modRev = new Float64Array(c.keySpaceSize);
    this.value = randomValue(c.valSize);
    for (let i = ctx.threadIndex; i < c.keySpaceSize; i += ctx.threadCount) this.owned.push(i);
    if (this.owned.length === 0) throw new Error('kube: --key-space-size is smaller than --threads');
    const ser = c.consistency === 's' ? { serializable: true } : {};
    this.getWriter = new TemplateWriter(makeTemplate(M.RangeRequest, c.keySize, (key) => ({ key, ...ser })), ctx.clientConn.length);
    const prefix = Buffer.from(c.keyPrefix, 'latin1');
    this.listBody = encodeFramed(M.RangeRequest, { key: prefix, rangeEnd: prefixEnd(prefix), ...(c.listLimit > 0 ? { limit: c.listLimit } : {}), ...ser });
    const sum = c.kubeMix[0] + c.kubeMix[1] + c.kubeMix[2];
    this.weights = [c.kubeMix[0] / sum, (c.kubeMix[0] + c.kubeMix[1]) / sum];
    // Create (or learn the mod_revision of) every object this thread owns.
    await forEachOwned(ctx, c.keySpaceSize, 32, async (i, conn) => {
      this.learn(i, await conn.unaryAsync(PATHS.txn, this.txn(i)));
    });
  }

  private learn(i: number, payload: Buffer): boolean {
    const r = messages().TxnResponse.decode(payload) as unknown as {
      succeeded: boolean; header?: { revision: unknown };
      responses: { responseRange?: { kvs: { modRevision: unknown }[] } }[];
    };
    if (r.succeeded) { this.modRev[i] = toNum(r.header?.revision); return true; }
    const kv = r.responses[0]?.responseRange?.kvs[0];
    this.modRev[i] = kv ? toNum(kv.modRevision) : 0;
    return false;
  }

  next(client: number, op: Op): void {
    const u = Math.random();
    const i = this.owned[Math.floor(Math.random() * this.owned.length)]!;
    op.key = i;
    if (u < this.weights[0]!) {
      op.op = KUBE_UPDATE; op.path = PATHS.txn; op.body = this.txn(i);
    } else if (u < this.weights[1]!) {
      op.op = KUBE_GET; op.path = PATHS.range; op.body = this.getWriter.withString(client, keyName(this.cfg, i));
    } else {
      op.op = KUBE_LIST; op.path = PATHS.range; op.body = this.listBody;
    }
  }

  onResponse(_client: number, op: Op, payload: Buffer): void {
    if (op.op === KUBE_UPDATE && !this.learn(op.key, payload)) this.conflicts++;
  }

  counters(): Record<string, number> { return { conflicts: this.conflicts }; }
}

/** authenticate: Authenticate with --user's credentials, the server checking the bcrypt hash each time. */
class AuthenticateWorkload implements Workload {
  readonly opNames = ['authenticate'] as const;
  private readonly body: Buffer;
  constructor(cfg: BenchConfig) { this.body = authenticateBody(parseUser(cfg.user)); }
  async prepare(): Promise<void> {}
  next(_client: number, op: Op): void {
    op.op = 0; op.path = PATHS.authenticate; op.body = this.body;
  }
}

export function createWorkload(name: WorkloadName, cfg: BenchConfig): Workload {
  switch (name) {
    case 'put': return new PutWorkload(cfg);
    case 'range': return new RangeWorkload(cfg);
    case 'txn-put': return new TxnPutWorkload(cfg);
    case 'kube': return new KubeWorkload(cfg);
    case 'watch-latency': return new WatchLatency(cfg);
    case 'lease-keepalive': return new LeaseKeepAlive();
    case 'authenticate': return new AuthenticateWorkload(cfg);
  }
}
