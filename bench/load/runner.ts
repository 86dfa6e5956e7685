// Runs one benchmark: splits sessions and clients over worker threads, starts
// them together, samples CPU over the measured window, merges the histograms.
import { Worker } from 'node:worker_threads';
import type { BenchConfig } from './config.js';
import type { WorkerInit, FromWorker, ResultMsg, ToWorker } from './protocol.js';
import { newHistogram, mergeInto, summarize, percentileCurve, type Histogram, type LatencySummary } from './histogram.js';
import { sampleCpu, cpuBetween, type CpuSample, type CpuReport } from './cpu.js';
import { Progress } from './progress.js';
import { nowMs } from './workload.js';

export interface OpResult {
  name: string;
  throughput: number;          // completed requests/s in the window
  latencyUs: LatencySummary;
  curve: { p: number; us: number }[];
}

export interface BenchResult {
  label: string;
  workload: string;
  config: BenchConfig;
  startedAt: string;
  windowSec: number;
  requests: number;            // successful measured requests
  errors: number;
  errorsByCode: Record<string, number>;
  errorSamples: string[];
  throughput: number;
  latencyUs: LatencySummary;
  curve: { p: number; us: number }[];
  ops: OpResult[];
  counters: Record<string, number>;
  unfinished: number;
  backlog: number;
  cpu: CpuReport & { clientUsPerRequest: number; threads: number };
}

export interface RunOptions { serverPid?: number; progress?: boolean }

const READY_TIMEOUT_MS = 120_000;
const START_DELAY_MS = 50;

/** Thread i gets sessions c with c % threads == i; client k uses session k % conns. */
export function plan(cfg: BenchConfig): WorkerInit[] {
  const threads = Math.max(1, Math.min(cfg.threads, cfg.conns));
  const inits: WorkerInit[] = [];
  for (let t = 0; t < threads; t++) {
    const connIdx: number[] = [];
    for (let c = t; c < cfg.conns; c += threads) connIdx.push(c);
    const clientConn: number[] = [];
    for (let k = 0; k < cfg.clients; k++) {
      const local = connIdx.indexOf(k % cfg.conns);
      if (local >= 0) clientConn.push(local);
    }
    inits.push({
      cfg, threadIndex: t, threadCount: threads,
      endpoints: connIdx.map((c) => cfg.endpoints[c % cfg.endpoints.length]!),
      clientConn, rate: (cfg.rate * clientConn.length) / cfg.clients, quota: 0,
    });
  }
  // Split --total in proportion to clients, remainder to the first threads.
  if (cfg.total > 0) {
    let left = cfg.total;
    for (const w of inits) { w.quota = Math.floor((cfg.total * w.clientConn.length) / cfg.clients); left -= w.quota; }
    for (let i = 0; left > 0; i = (i + 1) % inits.length, left--) inits[i]!.quota++;
  }
  return inits;
}

export async function runBench(cfg: BenchConfig, opts: RunOptions = {}): Promise<BenchResult> {
  const inits = plan(cfg);
  const workers = inits.map((init) => new Worker(new URL('./worker.js', import.meta.url), { workerData: init }));
  const progress = new Progress();
  const measuredNow = new Array<number>(workers.length).fill(0);
  const results: ResultMsg[] = [];
  let onAllReady!: () => void;
  let onAllDone!: () => void;
  let fail!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { onAllReady = res; fail = rej; });
  const done = new Promise<void>((res) => { onAllDone = res; });
  let readyCount = 0;
  const failed = (e: Error): void => { fail(e); onAllDone(); };
  workers.forEach((w, i) => {
    w.on('message', (m: FromWorker) => {
      if (m.type === 'ready') { if (++readyCount === workers.length) onAllReady(); }
      else if (m.type === 'fail') failed(new Error(`worker ${i}: ${m.message}`));
      else if (m.type === 'progress') measuredNow[i] = m.measured;
      else if (m.type === 'result') { results.push(m); if (results.length === workers.length) onAllDone(); }
    });
    w.on('error', (e) => failed(e));
    w.on('exit', (code) => { if (code !== 0) failed(new Error(`worker ${i} exited with ${code}`)); });
  });
  const readyTimer = setTimeout(() => fail(new Error('workers not ready in time (connect/prefill)')), READY_TIMEOUT_MS);
  try {
    await ready;
    clearTimeout(readyTimer);
    const t0 = nowMs() + START_DELAY_MS;
    const measureStart = t0 + cfg.warmupSec * 1000;
    const measureEnd = cfg.total > 0 ? Infinity : measureStart + cfg.durationSec * 1000;
    const go: ToWorker = { type: 'go', t0, measureStart, measureEnd };
    for (const w of workers) w.postMessage(go);

    let cpuStart: CpuSample | null = null;
    let cpuEnd: CpuSample | null = null;
    const startTimer = setTimeout(() => { cpuStart = sampleCpu(opts.serverPid); }, measureStart - nowMs());
    const endTimer = measureEnd !== Infinity ? setTimeout(() => { cpuEnd = sampleCpu(opts.serverPid); }, measureEnd - nowMs()) : null;
    const tick = setInterval(() => {
      const n = measuredNow.reduce((a, b) => a + b, 0);
      const now = nowMs();
      const frac = cfg.total > 0 ? n / cfg.total : (now - measureStart) / (measureEnd - measureStart);
      progress.update(now < measureStart ? 0 : frac, now < measureStart ? 'warming up' : `${n} requests`);
    }, 200);
    if (opts.progress === false) clearInterval(tick);
    await done;
    clearInterval(tick);
    clearTimeout(startTimer);
    if (endTimer) clearTimeout(endTimer);
    progress.done();
    if (results.length !== workers.length) throw new Error('a worker failed');
    cpuEnd ??= sampleCpu(opts.serverPid);
    cpuStart ??= cpuEnd;
    return assemble(cfg, results, cpuStart, cpuEnd, measureStart, measureEnd, inits.length);
  } finally {
    clearTimeout(readyTimer);
    progress.done();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function assemble(cfg: BenchConfig, results: ResultMsg[], a: CpuSample, b: CpuSample, measureStart: number, measureEnd: number, threads: number): BenchResult {
  const nOps = results[0]!.histograms.length;
  const perOp: Histogram[] = [];
  const all = newHistogram();
  for (let o = 0; o < nOps; o++) {
    const h = newHistogram();
    for (const r of results) mergeInto(h, r.histograms[o]!);
    perOp.push(h);
    all.add(h);
  }
  const lastDone = Math.max(...results.map((r) => r.lastDone));
  const windowSec = (measureEnd !== Infinity ? measureEnd - measureStart : Math.max(1, lastDone - measureStart)) / 1000;
  const sum = (f: (r: ResultMsg) => number): number => results.reduce((acc, r) => acc + f(r), 0);
  const errorsByCode: Record<string, number> = {};
  const counters: Record<string, number> = {};
  for (const r of results) {
    for (const [k, v] of Object.entries(r.errorsByCode)) errorsByCode[k] = (errorsByCode[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.counters)) counters[k] = (counters[k] ?? 0) + v;
  }
  const names = resultsOpNames(cfg, nOps);
  const cpu = cpuBetween(a, b);
  const requests = all.totalCount;
  return {
    label: cfg.label || cfg.workload,
    workload: cfg.workload,
    config: cfg,
    startedAt: new Date(measureStart).toISOString(),
    windowSec,
    requests,
    errors: sum((r) => r.errors),
    errorsByCode,
    errorSamples: results.flatMap((r) => r.errorSamples).slice(0, 10),
    throughput: requests / windowSec,
    latencyUs: summarize(all),
    curve: percentileCurve(all),
    ops: perOp.map((h, i) => ({ name: names[i]!, throughput: h.totalCount / windowSec, latencyUs: summarize(h), curve: percentileCurve(h) })),
    counters,
    unfinished: sum((r) => r.unfinished),
    backlog: sum((r) => r.backlog),
    cpu: { ...cpu, clientUsPerRequest: requests > 0 ? ((cpu.clientPct / 100) * windowSec * 1e6) / requests : 0, threads },
  };
}

function resultsOpNames(cfg: BenchConfig, n: number): string[] {
  const byWorkload: Record<string, string[]> = {
    kube: ['update', 'get', 'list'], 'watch-latency': ['put', 'watch'],
  };
  return byWorkload[cfg.workload] ?? Array.from({ length: n }, () => cfg.workload);
}
