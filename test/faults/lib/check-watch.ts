// Watch guarantees (etcd's API guarantees), each checked on its own, for a
// watcher on a fresh key prefix from `startRevision`, cut and resumed from
// its last seen revision + 1 during the run:
// - ordered:   event revisions never go down along the stream(s);
// - unique:    no (revision, key) event delivered twice;
// - atomic:    all events of one revision arrive in one response;
// - reliable:  no event of the log missing between the start and the last revision seen;
// - resumable: a resumed stream starts exactly at the next event of the log;
// - prev-kv:   each event's prev_kv is the key's previous state in the log;
// - log-equal: each delivered event equals the log's event (type, value, revision);
// - history:   the log equals the KV history: every acknowledged write is in
//   it at its revision, every event is some write that may have happened.
// The log is a full watch from startRevision taken after the run on a healed
// cluster (the same from every member: see sameLogs).

import { isEffectiveWrite, type KvOp, type KvSnap, type WatchEventRec, type WatchHistory } from './history.js';
import { RevisionLog, type Anomaly } from './check-kv.js';

const MAX_PER_CHECK = 10;

class Sink {
  readonly anomalies: Anomaly[] = [];
  private counts = new Map<string, number>();
  add(check: string, detail: string): void {
    const n = (this.counts.get(check) ?? 0) + 1;
    this.counts.set(check, n);
    if (n <= MAX_PER_CHECK) this.anomalies.push({ check, detail });
  }
}

const ev = (e: WatchEventRec): string => `${e.type} ${e.key}=${e.value}@${e.modRevision}`;
const sameSnap = (a: KvSnap | null, b: KvSnap | null): boolean =>
  a === null ? b === null : b !== null && a.value === b.value && a.modRevision === b.modRevision;

/** The log's own shape: one event per revision (the traffic writes one key per revision), strictly increasing, prev_kv chained. */
export function checkLogShape(log: WatchEventRec[], startRevision: number): Anomaly[] {
  const s = new Sink();
  let last = startRevision - 1;
  const state = new Map<string, KvSnap | null>();
  for (const e of log) {
    if (e.modRevision <= last) s.add('log-shape', `log event ${ev(e)} after revision ${last}`);
    last = e.modRevision;
    const prev = state.get(e.key) ?? null;
    if (!sameSnap(prev, e.prevKv)) s.add('prev-kv', `log event ${ev(e)} has prev_kv ${JSON.stringify(e.prevKv)}, the key was ${JSON.stringify(prev)}`);
    state.set(e.key, e.type === 'put' ? { value: e.value, modRevision: e.modRevision } : null);
  }
  return s.anomalies;
}

/** Logs fetched from different members are identical. */
export function sameLogs(logs: { member: string; events: WatchEventRec[] }[]): Anomaly[] {
  const s = new Sink();
  const key = (l: WatchEventRec[]) => JSON.stringify(l);
  for (const l of logs.slice(1)) {
    if (key(l.events) !== key(logs[0]!.events)) {
      const i = l.events.findIndex((e, k) => JSON.stringify(e) !== JSON.stringify(logs[0]!.events[k]));
      s.add('members-agree', `log from ${l.member} differs from ${logs[0]!.member} at event ${i}: ${l.events[i] ? ev(l.events[i]!) : 'missing'} vs ${logs[0]!.events[i] ? ev(logs[0]!.events[i]!) : 'missing'}`);
    }
  }
  return s.anomalies;
}

/** The log against the KV history. */
export function checkLogAgainstHistory(ops: KvOp[], log: WatchEventRec[]): Anomaly[] {
  const s = new Sink();
  const byRev = new Map<number, WatchEventRec>(log.map((e) => [e.modRevision, e]));
  const writers = new Map<string, KvOp>(); // written value -> op
  for (const op of ops) if (op.input.type === 'put' || op.input.type === 'cas') writers.set(op.input.value, op);
  for (const op of ops) {
    if (!isEffectiveWrite(op)) continue;
    const r = op.output!.revision;
    const e = byRev.get(r);
    const i = op.input;
    const want = i.type === 'delete' ? `delete ${i.key}` : `put ${i.key}=${(i as { value: string }).value}`;
    const got = e ? (e.type === 'delete' ? `delete ${e.key}` : `put ${e.key}=${e.value}`) : 'nothing';
    if (want !== got) s.add('history', `acknowledged write #${op.id} (${want}) at revision ${r}, the log has ${got}`);
  }
  for (const e of log) {
    if (e.type === 'put') {
      const w = writers.get(e.value);
      if (!w || w.input.key !== e.key) { s.add('history', `log event ${ev(e)}: no such write in the history`); continue; }
      if (w.outcome === 'fail') s.add('history', `log event ${ev(e)} is write #${w.id}, which failed definitely (${w.error})`);
    } else if (!ops.some((o) => o.input.type === 'delete' && o.input.key === e.key && o.outcome !== 'fail')) {
      s.add('history', `log event ${ev(e)}: no delete of that key in the history`);
    }
  }
  return s.anomalies;
}

/**
 * The traffic watcher's deliveries against the log, which ends at revision
 * `until` (the sentinel write). A write whose outcome the traffic never learned
 * may commit after the sentinel, and the watcher, still open until it has seen
 * the sentinel, may deliver it: such an event is past the log and is checked
 * for order, uniqueness and atomicity only.
 */
export function checkWatch(w: WatchHistory, log: WatchEventRec[], until: number): { anomalies: Anomaly[]; events: number; pastLog: number } {
  const s = new Sink();
  const truth = new RevisionLog(log);
  const logAt = new Map<string, WatchEventRec>(log.map((e) => [`${e.modRevision}/${e.key}`, e]));
  const seen = new Set<string>();
  const revResponse = new Map<number, number>();
  let last = 0;
  let events = 0;
  let pastLog = 0;
  w.responses.forEach((r, ri) => {
    for (const e of r.events) {
      events++;
      const id = `${e.modRevision}/${e.key}`;
      if (e.modRevision < last) s.add('ordered', `stream ${r.stream}: ${ev(e)} after revision ${last}`);
      last = Math.max(last, e.modRevision);
      if (seen.has(id)) s.add('unique', `stream ${r.stream}: ${ev(e)} delivered twice`);
      seen.add(id);
      const at = revResponse.get(e.modRevision);
      if (at !== undefined && at !== ri) s.add('atomic', `revision ${e.modRevision} split across responses ${at} and ${ri}`);
      revResponse.set(e.modRevision, ri);
      if (e.modRevision > until) { pastLog++; continue; }
      const t = logAt.get(id);
      if (!t || t.type !== e.type || t.value !== e.value) s.add('log-equal', `delivered ${ev(e)}, the log (to the sentinel at ${until}) has ${t ? ev(t) : 'no such event'}`);
      const prev = truth.at(e.key, e.modRevision - 1);
      if (!sameSnap(prev, e.prevKv)) s.add('prev-kv', `delivered ${ev(e)} with prev_kv ${JSON.stringify(e.prevKv)}, the key was ${JSON.stringify(prev)}`);
    }
  });
  for (const e of log) {
    if (e.modRevision >= w.startRevision && e.modRevision <= last && !seen.has(`${e.modRevision}/${e.key}`)) s.add('reliable', `log event ${ev(e)} never delivered (last delivered revision ${last})`);
  }
  // Each resumed stream's first event is the log's first event at or after its start revision.
  for (const st of w.streams.slice(1)) {
    const first = w.responses.find((r) => r.stream === st.stream && r.events.length > 0)?.events[0];
    if (!first) continue;
    const want = log.find((e) => e.modRevision >= st.startRevision);
    if (!want || want.modRevision !== first.modRevision || want.key !== first.key) {
      s.add('resumable', `stream ${st.stream} from revision ${st.startRevision} on ${st.member} began with ${ev(first)}, the log's next event is ${want ? ev(want) : 'none'}`);
    }
  }
  return { anomalies: s.anomalies, events, pastLog };
}
