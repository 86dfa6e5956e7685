// A load worker thread: its own HTTP/2 sessions, its share of the clients,
// closed-loop or open-loop (--rate) driving, one histogram per op kind.
import { parentPort, workerData } from 'node:worker_threads';
import { newConn } from './conn.js';
import { newHistogram, record, encode, type Histogram } from './histogram.js';
import type { WorkerInit, ToWorker, FromWorker, GoMsg } from './protocol.js';
import { createWorkload } from './workloads.js';
import { authenticate, parseUser } from './auth.js';
import { nowMs, type Op, type WorkloadCtx } from './workload.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);
const MAX_ERROR_SAMPLES = 5;
const ERROR_BACKOFF_MS = 10;

class Driver {
  private readonly hist: Histogram[];
  private measured = 0;           // measured requests issued (total mode) or completed
  private completedMeasured = 0;
  private errors = 0;
  private readonly errorsByCode: Record<string, number> = {};
  private readonly errorSamples: string[] = [];
  private inFlight = 0;
  private stopping = false;
  private firstSend = Infinity;
  private lastDone = 0;
  private go!: GoMsg;
  // open loop
  private scheduled = 0;          // index of the next intended send
  private readonly idle: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly ops: Op[];
  private finish!: () => void;
  private finished = false;
  private readonly wl;
  readonly ctx: WorkloadCtx;

  constructor(private readonly ctxBase: Omit<WorkloadCtx, 'record' | 'now'>) {
    this.wl = createWorkload(init.cfg.workload, init.cfg);
    this.hist = this.wl.opNames.map(() => newHistogram());
    this.ops = init.clientConn.map(() => ({ op: 0, path: '', body: Buffer.alloc(0), key: 0 }));
    this.ctx = {
      ...ctxBase,
      record: (op, us) => {
        const t = nowMs();
        if (this.go && t >= this.go.measureStart && t < this.go.measureEnd && !this.stopping) record(this.hist[op]!, us);
      },
      now: nowMs,
    };
  }

  prepare(): Promise<void> { return this.wl.prepare(this.ctx); }

  run(go: GoMsg): Promise<void> {
    this.go = go;
    return new Promise((resolve) => {
      this.finish = () => { if (!this.finished) { this.finished = true; resolve(); } };
      const startIn = Math.max(0, go.t0 - nowMs());
      setTimeout(() => (init.rate > 0 ? this.startOpen() : this.startClosed()), startIn);
      const progress = setInterval(() => post({ type: 'progress', measured: this.completedMeasured, errors: this.errors }), 250);
      const oldFinish = this.finish;
      this.finish = () => { clearInterval(progress); oldFinish(); };
      if (go.measureEnd !== Infinity) {
        setTimeout(() => this.drainTimeout(), go.measureEnd - nowMs() + init.cfg.drainTimeoutSec * 1000).unref();
      }
    });
  }

  stop(): void { this.stopping = true; this.maybeFinish(); }

  /** Decides whether a request starting (or intended) at `t` is measured, or stops the client. */
  private admit(t: number): 'warmup' | 'measured' | 'stop' {
    if (this.stopping || this.finished) return 'stop';
    if (t < this.go.measureStart) return 'warmup';
    if (init.quota > 0) {
      if (this.measured >= init.quota) return 'stop';
      this.measured++;
      return 'measured';
    }
    return t < this.go.measureEnd ? 'measured' : 'stop';
  }

  private startClosed(): void {
    for (let c = 0; c < this.ops.length; c++) this.issueClosed(c);
    this.maybeFinish();
  }

  private issueClosed(c: number): void {
    const t = nowMs();
    const a = this.admit(t);
    if (a === 'stop') { this.maybeFinish(); return; }
    this.send(c, t, a === 'measured', (ok) => {
      if (ok) this.issueClosed(c);
      else setTimeout(() => this.issueClosed(c), ERROR_BACKOFF_MS);
    });
  }

  private startOpen(): void {
    for (let c = 0; c < this.ops.length; c++) this.idle.push(c);
    this.timer = setInterval(() => this.pump(), 1);
    this.pump();
  }

  private intended(k: number): number { return this.go.t0 + (k * 1000) / init.rate; }

  /** Sends every request whose intended time has come, while clients are free. */
  private pump(): void {
    const now = nowMs();
    while (this.idle.length > 0 && !this.stopping) {
      const t = this.intended(this.scheduled);
      if (t > now) return;
      const a = this.admit(t);
      if (a === 'stop') { this.stopOpen(); return; }
      this.scheduled++;
      const c = this.idle.pop()!;
      this.send(c, t, a === 'measured', () => { this.idle.push(c); this.pump(); });
    }
    if (this.stopping) this.stopOpen();
  }

  private stopOpen(): void {
    if (this.timer) { clearInterval(this.timer); this.timer = null; }
    this.maybeFinish();
  }

  /** Sends one request; latency counts from `t` (the send or intended time). */
  private send(c: number, t: number, measured: boolean, next: (ok: boolean) => void): void {
    const op = this.ops[c]!;
    this.wl.next(c, op);
    this.inFlight++;
    if (measured && t < this.firstSend) this.firstSend = t;
    const done = (status: number, message: string, payload: Buffer | null): void => {
      this.inFlight--;
      const end = nowMs();
      if (status === 0 && payload) {
        if (this.wl.onResponse) this.wl.onResponse(c, op, payload);
        if (measured) { record(this.hist[op.op]!, Math.round((end - t) * 1000)); this.completedMeasured++; this.lastDone = end; }
      } else if (measured) {
        this.errors++;
        this.errorsByCode[status] = (this.errorsByCode[status] ?? 0) + 1;
        if (this.errorSamples.length < MAX_ERROR_SAMPLES) this.errorSamples.push(`${status}: ${message}`);
        this.lastDone = end;
      }
      next(status === 0);
      this.maybeFinish();
    };
    if (this.wl.send) this.wl.send(c, op, done);
    else this.ctxBase.conns[this.ctxBase.clientConn[c]!]!.unary(op.path, op.body, done);
  }

  private maybeFinish(): void {
    if (this.inFlight > 0) return;
    const now = nowMs();
    const closedDone = init.rate === 0 && (this.stopping || (init.quota > 0 ? this.measured >= init.quota : now >= this.go.measureEnd));
    const openDone = init.rate > 0 && this.timer === null;
    if (closedDone || openDone) this.finish();
  }

  private drainTimeout(): void {
    this.stopping = true;
    if (this.timer) { clearInterval(this.timer); this.timer = null; }
    this.finish();
  }

  result(): FromWorker {
    const backlog = init.rate > 0 && init.quota === 0
      ? Math.max(0, Math.floor(((this.go.measureEnd - this.go.t0) * init.rate) / 1000) - this.scheduled) : 0;
    return {
      type: 'result',
      histograms: this.hist.map(encode),
      errors: this.errors,
      errorsByCode: this.errorsByCode,
      errorSamples: this.errorSamples,
      counters: this.wl.counters?.() ?? {},
      firstSend: this.firstSend,
      lastDone: this.lastDone,
      unfinished: this.inFlight,
      backlog,
    };
  }

  close(): void {
    this.wl.close?.();
    for (const c of this.ctxBase.conns) c.close();
  }
}

async function main(): Promise<void> {
  const conns = init.endpoints.map((e) => newConn(init.cfg.transport, e, init.cfg.tls));
  await Promise.all(conns.map((c) => c.connect()));
  // With --user, this thread's clients run as that user: one Authenticate, its token on every session.
  if (init.cfg.user !== '' && init.cfg.workload !== 'authenticate') {
    const token = await authenticate(conns[0]!, parseUser(init.cfg.user));
    for (const c of conns) c.setToken(token);
  }
  const driver = new Driver({ cfg: init.cfg, threadIndex: init.threadIndex, threadCount: init.threadCount, conns, clientConn: init.clientConn });
  await driver.prepare();
  post({ type: 'ready' });
  const go = await new Promise<GoMsg>((resolve) => {
    port.on('message', (m: ToWorker) => {
      if (m.type === 'go') resolve(m);
      else if (m.type === 'stop') driver.stop();
    });
  });
  await driver.run(go);
  post(driver.result());
  driver.close();
}

main().catch((err: unknown) => {
  post({ type: 'fail', message: err instanceof Error ? err.message : String(err) });
});
