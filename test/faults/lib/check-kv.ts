// Checks a recorded KV history. Each check is named in the anomalies it reports:
// - linearizable: per key (porcupine's partitioning), Wing-Gong/Lowe over the
//   model in kv-model.ts, linearizable reads and all writes;
// - revision-order: revisions are one clock consistent with real time across
//   keys (an op invoked after another returned never answers a lower revision;
//   a write, a strictly higher one); two effective writes never share one;
// - member-monotonic: on one member incarnation, reads (serializable ones
//   included) never go back in time, so a serializable read is never newer
//   than a later linearizable read on that member;
// - read-at-revision: every ok read (serializable ones included) returns what
//   the log of events holds for its key at the read's header revision.
// The log of events ("truth") comes from a watch from the start revision on a
// healed cluster; check-watch.ts checks it against the writes.

import { isEffectiveWrite, type KvOp, type KvOutput, type KvSnap, type WatchEventRec } from './history.js';
import { checkLinearizable, type Operation } from './linearizability.js';
import { kvModel, type KvStepInput } from './kv-model.js';

export interface Anomaly { check: string; detail: string }

export interface KvCheckReport {
  anomalies: Anomaly[];
  /** Operations given to the linearizability checker (ok writes, unknown writes, ok linearizable reads). */
  checked: number;
  keys: number;
  steps: number;
}

const show = (op: KvOp): string => `#${op.id} c${op.client}@${op.member} ${JSON.stringify(op.input)} -> ${op.outcome} ${op.output ? JSON.stringify(op.output) : op.error ?? ''}`;

/** The mod revision of each written value, from every place a value shows up with its revision. */
export function learnRevisions(ops: KvOp[], events: WatchEventRec[] = []): Map<string, number> {
  const m = new Map<string, number>();
  const see = (s: KvSnap | null | undefined) => { if (s) m.set(s.value, s.modRevision); };
  for (const op of ops) {
    const o = op.output;
    if (op.outcome !== 'ok' || !o) continue;
    if (o.type === 'get') see(o.kv);
    else if (o.type === 'cas') see(o.kv);
    else see(o.prevKv);
    if (o.type === 'put' && op.input.type === 'put') m.set(op.input.value, o.revision);
    if (o.type === 'cas' && o.succeeded && op.input.type === 'cas') m.set(op.input.value, o.revision);
  }
  for (const e of events) {
    if (e.type === 'put') m.set(e.value, e.modRevision);
    see(e.prevKv);
  }
  return m;
}

/** The ops that take part in the linearizability check, per key. */
function partition(ops: KvOp[], learned: Map<string, number>): Map<string, Operation<KvStepInput, KvOutput>[]> {
  const parts = new Map<string, Operation<KvStepInput, KvOutput>[]>();
  for (const op of ops) {
    const i = op.input;
    if (i.type === 'get' && (i.serializable || op.outcome !== 'ok')) continue;
    if (i.type !== 'get' && op.outcome === 'fail') continue; // definitely not applied
    const written = i.type === 'put' || i.type === 'cas' ? i.value : null;
    // An unknown write whose unique value shows up nowhere (no read, no prev_kv, no event of the
    // full log) did not take effect: the log holds every effective write (check-watch.ts checks it
    // against the history). Dropping it keeps the search small when a member is down for seconds.
    if (written !== null && op.outcome === 'unknown' && !learned.has(written)) continue;
    const entry: Operation<KvStepInput, KvOutput> = {
      id: op.id, call: op.call, ret: op.outcome === 'ok' ? op.ret : Infinity,
      input: { input: i, learnedRev: written !== null ? learned.get(written) ?? null : null },
      output: op.outcome === 'ok' ? op.output : undefined,
    };
    const p = parts.get(i.key);
    if (p) p.push(entry); else parts.set(i.key, [entry]);
  }
  return parts;
}

export function checkLinearizability(ops: KvOp[], events: WatchEventRec[] = []): KvCheckReport {
  const learned = learnRevisions(ops, events);
  const parts = partition(ops, learned);
  const byId = new Map(ops.map((o) => [o.id, o]));
  const anomalies: Anomaly[] = [];
  let checked = 0;
  let steps = 0;
  for (const [key, part] of [...parts].sort(([a], [b]) => a.localeCompare(b))) {
    checked += part.length;
    const r = checkLinearizable(kvModel, part);
    steps += r.steps;
    if (!r.ok) {
      const prefix = (r.longestPrefix ?? []).slice(-5).map((id) => show(byId.get(id)!));
      const stuck = (r.stuckAt ?? []).slice(0, 6).map((id) => show(byId.get(id)!));
      if (r.exhausted) anomalies.push({ check: 'linearizable-undecided', detail: `key ${key}: no verdict within ${r.steps} search steps (${part.length} ops)` });
      else anomalies.push({ check: 'linearizable', detail: `key ${key}: not linearizable (${part.length} ops, ${r.steps} steps). Last linearized:\n  ${prefix.join('\n  ')}\nCould not place next any of:\n  ${stuck.join('\n  ')}` });
    }
  }
  return { anomalies, checked, keys: parts.size, steps };
}

const revisionOf = (op: KvOp): number => op.output!.revision;

/** Sweeps ops by call time against the highest revision of ops that returned before. */
function sweepOrder(ops: KvOp[], check: string, anomalies: Anomaly[]): void {
  const byRet = [...ops].sort((a, b) => a.ret - b.ret);
  const byCall = [...ops].sort((a, b) => a.call - b.call);
  let j = 0;
  let maxRev = 0;
  let maxOp: KvOp | null = null;
  for (const op of byCall) {
    while (j < byRet.length && byRet[j]!.ret < op.call) {
      const r = revisionOf(byRet[j]!);
      if (r > maxRev) { maxRev = r; maxOp = byRet[j]!; }
      j++;
    }
    const r = revisionOf(op);
    const bad = isEffectiveWrite(op) ? r <= maxRev : r < maxRev;
    if (bad && anomalies.filter((a) => a.check === check).length < 10) {
      anomalies.push({ check, detail: `${show(op)} answered revision ${r}, but ${show(maxOp!)} had returned ${maxRev} before it was invoked` });
    }
  }
}

export function checkRevisions(ops: KvOp[]): Anomaly[] {
  const anomalies: Anomaly[] = [];
  const okOps = ops.filter((o) => o.outcome === 'ok' && o.output);
  // Linearizable ops: one clock across keys and members.
  sweepOrder(okOps.filter((o) => !(o.input.type === 'get' && o.input.serializable)), 'revision-order', anomalies);
  const seen = new Map<number, KvOp>();
  for (const op of okOps) {
    if (!isEffectiveWrite(op)) continue;
    const other = seen.get(revisionOf(op));
    if (other) anomalies.push({ check: 'revision-order', detail: `two writes acknowledged at revision ${revisionOf(op)}: ${show(other)} and ${show(op)}` });
    seen.set(revisionOf(op), op);
  }
  // Per member incarnation: reads never go back in time.
  const byMember = new Map<string, KvOp[]>();
  for (const op of okOps) {
    if (op.input.type !== 'get') continue;
    const l = byMember.get(op.member);
    if (l) l.push(op); else byMember.set(op.member, [op]);
  }
  for (const l of byMember.values()) sweepOrder(l, 'member-monotonic', anomalies);
  return anomalies;
}

/** The value of each key at each revision, from the event log. */
export class RevisionLog {
  private readonly perKey = new Map<string, WatchEventRec[]>();
  constructor(events: WatchEventRec[]) {
    for (const e of events) {
      const l = this.perKey.get(e.key);
      if (l) l.push(e); else this.perKey.set(e.key, [e]);
    }
  }
  /** The key's kv as of revision r (null: absent). */
  at(key: string, r: number): KvSnap | null {
    const l = this.perKey.get(key) ?? [];
    let last: WatchEventRec | null = null;
    for (const e of l) { if (e.modRevision > r) break; last = e; }
    return last === null || last.type === 'delete' ? null : { value: last.value, modRevision: last.modRevision };
  }
}

/** Every ok read returns the log's state of its key at the read's header revision (reads at or below `upTo`). */
export function checkReadsAgainstLog(ops: KvOp[], events: WatchEventRec[], upTo: number): Anomaly[] {
  const log = new RevisionLog(events);
  const anomalies: Anomaly[] = [];
  for (const op of ops) {
    const o = op.output;
    if (op.outcome !== 'ok' || !o || o.type !== 'get' || o.revision > upTo) continue;
    const want = log.at(op.input.key, o.revision);
    const same = want === null ? o.kv === null : o.kv !== null && o.kv.value === want.value && o.kv.modRevision === want.modRevision;
    if (!same && anomalies.length < 10) anomalies.push({ check: 'read-at-revision', detail: `${show(op)}: the log at revision ${o.revision} holds ${JSON.stringify(want)}` });
  }
  return anomalies;
}
