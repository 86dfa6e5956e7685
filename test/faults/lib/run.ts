// One fault run: traffic and a watcher on a fresh key prefix of a live
// cluster, one fault injected at 30% of the op budget and healed, the watch
// cut and resumed once, then a sentinel write and final reads of every key
// once healed; then every checker over the recorded history and the event
// log read back from every member.

import { makeRng } from '../../../src/raft/rng.js';
import { KvClient } from '../../integration/kv-client.js';
import { checkLinearizability, checkReadsAgainstLog, checkRevisions, type Anomaly } from './check-kv.js';
import { checkLogAgainstHistory, checkLogShape, checkWatch, sameLogs } from './check-watch.js';
import type { Cluster } from './cluster.js';
import type { FailpointName } from '../../../src/common/failpoints.js';
import { inject, type FaultKind, type FaultReport } from './faults.js';
import type { KvOp, WatchEventRec, WatchHistory } from './history.js';
import { Recorder } from './recorder.js';
import { Traffic } from './traffic.js';
import { Watcher, fetchLog } from './watcher.js';

export interface RunOptions {
  fault: FaultKind;
  seed: number;
  /** Op budget; traffic also goes on until the fault is healed. */
  ops: number;
  clients?: number;
  keys?: number;
  deadlineMs?: number;
  /** Key prefix unique to this run (the cluster may be reused). */
  prefix: string;
  /** failpoint-crash: the failpoint armed to crash. */
  point?: FailpointName;
}

export interface RunReport {
  fault: FaultReport;
  seed: number;
  ops: number;
  ok: number;
  unknown: number;
  failed: number;
  linChecked: number;
  watchEvents: number;
  /** Of them, delivered past the log's end (committed after the sentinel). */
  watchPastLog: number;
  watchStreams: number;
  logEvents: number;
  searchSteps: number;
  durationMs: number;
  anomalies: Anomaly[];
  /** Kept for tests that inject anomalies into a real history. */
  history: KvOp[];
  log: WatchEventRec[];
  watch: WatchHistory;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FINAL_TIMEOUT_MS = 30_000;
const SETTLE_MS = 3000;

/** The revision of the latest acknowledged put (every put is an event the watcher must see). */
function lastPutRevision(rec: Recorder): number {
  let rev = 0;
  for (const op of rec.ops) if (op.outcome === 'ok' && op.output?.type === 'put') rev = Math.max(rev, op.output.revision);
  return rev;
}

export async function runOnce(cluster: Cluster, o: RunOptions): Promise<RunReport> {
  const t0 = Date.now();
  const rnd = makeRng(o.seed);
  const rec = new Recorder();
  const clients = o.clients ?? 6;
  const keys = o.keys ?? 4;
  const deadlineMs = o.deadlineMs ?? 2000;
  const admin = new KvClient(cluster.endpoint(0));
  const startRevision = (await admin.range({ key: Buffer.from(o.prefix) }, 10_000)).header.revision + 1;
  admin.close();
  const watcher = new Watcher(cluster, o.prefix, startRevision, Math.floor(rnd() * cluster.size));
  await watcher.start();
  const traffic = new Traffic(cluster, rec, { seed: o.seed, clients, keys, prefix: o.prefix, deadlineMs, failPauseMs: 100 });
  let fault: FaultReport = { kind: o.fault };
  try {
    traffic.start();
    while (traffic.done < o.ops * 0.3) await sleep(10);
    fault = await inject(cluster, o.fault, o.point, watcher.memberIndex, { nextWriteAck: () => rec.nextWriteAck() });
    // The stream that lived through the fault delivers what it missed before the run moves it;
    // otherwise whether the faulted member's catch-up reaches the client before the cut is timing.
    await watcher.settle(lastPutRevision(rec), SETTLE_MS);
    while (traffic.done < o.ops * 0.6) await sleep(10);
    await watcher.cutAndResume();
    while (traffic.done < o.ops) await sleep(10);
    await traffic.stop();

    // Healed: a sentinel write, then every key read, retried until they succeed (all recorded).
    const kv0 = traffic.kvs[0]!;
    let sentinel = 0;
    for (let n = 0; sentinel === 0; n++) {
      const op = await rec.run(kv0, 0, cluster.label(0), { type: 'put', key: `${o.prefix}end`, value: `end-${n}`, prevKv: false }, deadlineMs);
      if (op.output) sentinel = op.output.revision;
      else if (cluster.closed) throw new Error('the cluster was closed before the sentinel write succeeded');
      else if (Date.now() - t0 > 10 * FINAL_TIMEOUT_MS) throw new Error(`the sentinel write keeps failing: ${op.error}\n${cluster.logs()}`);
      else await sleep(200);
    }
    for (let k = 0; k < keys; k++) {
      for (let c = 0; c < clients; c++) {
        const kv = traffic.kvs[c]!;
        for (let tries = 0; tries < 50; tries++) {
          const op = await rec.run(kv, c, cluster.label(c % cluster.size), { type: 'get', key: traffic.key(k), serializable: false }, deadlineMs);
          if (op.outcome === 'ok' || cluster.closed) break;
          await sleep(200);
        }
      }
    }
    await watcher.waitFor(sentinel, FINAL_TIMEOUT_MS);
    watcher.close();

    const logs: { member: string; events: WatchEventRec[] }[] = [];
    for (let i = 0; i < cluster.size; i++) logs.push({ member: cluster.label(i), events: await fetchLog(cluster.endpoint(i), o.prefix, startRevision, sentinel) });
    const log = logs[0]!.events;
    const lin = checkLinearizability(rec.ops, log);
    const w = checkWatch(watcher.history, log, sentinel);
    const anomalies = [
      ...lin.anomalies,
      ...checkRevisions(rec.ops),
      ...checkReadsAgainstLog(rec.ops, log, sentinel),
      ...sameLogs(logs),
      ...checkLogShape(log, startRevision),
      ...checkLogAgainstHistory(rec.ops, log),
      ...w.anomalies,
    ];
    const count = (x: string) => rec.ops.filter((op) => op.outcome === x).length;
    return {
      fault, seed: o.seed, ops: rec.ops.length, ok: count('ok'), unknown: count('unknown'), failed: count('fail'),
      linChecked: lin.checked, watchEvents: w.events, watchPastLog: w.pastLog, watchStreams: watcher.history.streams.length, logEvents: log.length,
      searchSteps: lin.steps, durationMs: Date.now() - t0, anomalies, history: rec.ops, log, watch: watcher.history,
    };
  } finally {
    watcher.close();
    await traffic.stop();
    traffic.close();
  }
}

export function summary(r: RunReport): string {
  return `${r.fault.kind}${r.fault.target ? `(${r.fault.target})` : ''} seed ${r.seed}: ${r.ops} ops (${r.ok} ok, ${r.unknown} unknown, ${r.failed} failed), ` +
    `${r.linChecked} checked for linearizability (${r.searchSteps} steps), watch ${r.watchEvents} events over ${r.watchStreams} streams${r.watchPastLog > 0 ? ` (${r.watchPastLog} past the log's sentinel)` : ''}, log ${r.logEvents} events, ` +
    `${r.fault.failoverMs !== undefined ? `failover ${r.fault.failoverMs} ms, ` : ''}${r.fault.heldMs !== undefined ? `fault held ${r.fault.heldMs} ms, ` : ''}${r.durationMs} ms, anomalies ${r.anomalies.length}`;
}
