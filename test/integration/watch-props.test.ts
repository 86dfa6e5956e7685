// Watch properties under concurrency. Every write goes through a recorder
// that builds a model from the acknowledged responses (revision -> changes);
// replaying it gives the exact event list any watcher must see. Checked per
// watcher: the events of its range from its start revision to the end, in
// revision order, each revision's events in one response, no gap, no
// duplicate, kv and prev_kv exact. Also: a stream cut mid-flight and resumed
// from last seen + 1, a watch on a compacted revision, a slow client.
// Seeded: ETSD_WATCH_SEED=<n> reproduces a run.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b, compare, op, prefixEnd } from './kv-client.js';
import type { RequestOp } from '../../src/proto/kv-types.js';
import {
  EVENT_DELETE, EVENT_PUT, FILTER_NODELETE, FILTER_NOPUT, WatchStream, newClient,
  type Kv, type WatchEvent, type WatchResp,
} from './watch-client.js';
import { makeRng } from '../../src/raft/rng.js';

const SEED = Number(process.env['ETSD_WATCH_SEED'] ?? 20240607);
const WRITERS = 4;
const OPS_PER_WRITER = Number(process.env['ETSD_WATCH_OPS'] ?? 750);
const WARMUP_OPS = 120;
const SETTLE_MS = 500;
const DELIVERY_TIMEOUT_MS = 20_000;

const mulberry32 = makeRng;
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
function pickDistinct<T>(rnd: () => number, xs: readonly T[], n: number): T[] {
  const pool = [...xs];
  const out: T[] = [];
  while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(rnd() * pool.length), 1)[0]!);
  return out;
}

const KEYS: string[] = [
  ...Array.from({ length: 15 }, (_, i) => `w/a/${String(i).padStart(2, '0')}`),
  ...Array.from({ length: 15 }, (_, i) => `w/b/${String(i).padStart(2, '0')}`),
  ...Array.from({ length: 5 }, (_, i) => `w/c/${String(i).padStart(2, '0')}`),
];

// ---- the model: revision -> changes, from acknowledged responses ----

interface Change { type: number; key: Buffer; value: Buffer }
const history = new Map<number, Change[]>();
const doubleAcks: string[] = [];

function record(rev: number, changes: Change[]): void {
  if (changes.length === 0) return;
  if (history.has(rev)) doubleAcks.push(`revision ${rev} acknowledged for two writes`);
  history.set(rev, changes);
}

const dir = makeTempDir('watchprops');
const server = await EtsdProcess.startReady({ dataDir: dir });
const kv = new KvClient(server.endpoint);
const watchConn = newClient(server.endpoint);
after(async () => { kv.close(); watchConn.close(); await server.stop(); removeTempDir(dir); });

async function put(key: string | Buffer, value: Buffer): Promise<number> {
  const r = await kv.put({ key: b(key), value });
  record(r.header.revision, [{ type: EVENT_PUT, key: b(key), value }]);
  return r.header.revision;
}

async function del(key: string, rangeEnd?: Buffer): Promise<number> {
  const r = await kv.deleteRange({ key: b(key), rangeEnd: rangeEnd ?? Buffer.alloc(0), prevKv: true });
  assert.equal(r.deleted, r.prevKvs.length, 'DeleteRange: deleted count vs prev_kvs');
  record(r.header.revision, r.prevKvs.map((p) => ({ type: EVENT_DELETE, key: p.key, value: Buffer.alloc(0) })));
  return r.header.revision;
}

async function txn(cmpKey: string, success: RequestOp[], failure: RequestOp[]): Promise<number> {
  const r = await kv.txn({ compare: [compare({ key: b(cmpKey), target: 0 /* VERSION */, result: 1 /* GREATER */, version: 0, targetUnion: 'version' })], success, failure });
  const ops = r.succeeded ? success : failure;
  assert.equal(r.responses.length, ops.length, 'Txn: one response per op');
  const changes: Change[] = [];
  ops.forEach((o, i) => {
    const res = r.responses[i]!;
    if (o.kind === 'put') changes.push({ type: EVENT_PUT, key: o.put.key, value: o.put.value });
    else if (o.kind === 'deleteRange' && res.kind === 'deleteRange') {
      for (const p of res.deleteRange.prevKvs) changes.push({ type: EVENT_DELETE, key: p.key, value: Buffer.alloc(0) });
    }
  });
  record(r.header.revision, changes);
  return r.header.revision;
}

/** One random write: puts, single and range deletes, multi-key txns (distinct keys, as etcd requires). */
async function randomWrite(rnd: () => number, tag: string): Promise<void> {
  const val = () => b(`${tag}-${Math.floor(rnd() * 1e9).toString(36)}`.padEnd(4 + Math.floor(rnd() * 60), '.'));
  const x = rnd();
  if (x < 0.5) { await put(pick(rnd, KEYS), val()); return; }
  if (x < 0.65) { await del(pick(rnd, KEYS)); return; }
  if (x < 0.7) {
    if (rnd() < 0.5) await del('w/c/', prefixEnd(b('w/c/')));
    else await del('w/a/10', b('w/a/13'));
    return;
  }
  const keys = pickDistinct(rnd, KEYS, 6);
  const success: RequestOp[] = [
    op.put({ key: b(keys[0]!), value: val() }), op.put({ key: b(keys[1]!), value: val() }),
    ...(rnd() < 0.5 ? [op.put({ key: b(keys[2]!), value: val() })] : []),
    ...(rnd() < 0.5 ? [op.del({ key: b(keys[3]!), prevKv: true })] : []),
    op.range({ key: b(keys[4]!) }),
  ];
  const failure: RequestOp[] = [op.put({ key: b(keys[5]!), value: val() }), ...(rnd() < 0.5 ? [op.del({ key: b(keys[4]!), prevKv: true })] : [])];
  await txn(pick(rnd, KEYS), success, failure);
}

interface ExpectedEvent { rev: number; ev: WatchEvent }

/** Replays the model: every event with its full kv and prev kv, in (revision, op) order. */
function replay(finalRev: number): ExpectedEvent[] {
  const revs = [...history.keys()].sort((x, y) => x - y);
  assert.deepEqual(doubleAcks, []);
  assert.equal(revs[0], 2, 'the first write of a fresh store is revision 2');
  for (let i = 1; i < revs.length; i++) assert.equal(revs[i], revs[i - 1]! + 1, `no write acknowledged at revision ${revs[i - 1]! + 1}`);
  assert.equal(revs[revs.length - 1], finalRev, 'the store revision is the last acknowledged one');
  const state = new Map<string, Kv>();
  const out: ExpectedEvent[] = [];
  for (const rev of revs) {
    for (const c of history.get(rev)!) {
      const k = c.key.toString('latin1');
      const prev = state.get(k) ?? null;
      if (c.type === EVENT_PUT) {
        const now: Kv = { key: c.key, value: c.value, createRevision: prev ? prev.createRevision : rev, modRevision: rev, version: prev ? prev.version + 1 : 1, lease: 0n };
        state.set(k, now);
        out.push({ rev, ev: { type: EVENT_PUT, kv: now, prevKv: prev } });
      } else {
        assert.ok(prev, `model: delete of absent key ${k} at ${rev}`);
        state.delete(k);
        out.push({ rev, ev: { type: EVENT_DELETE, kv: { key: c.key, value: Buffer.alloc(0), createRevision: 0, modRevision: rev, version: 0, lease: 0n }, prevKv: prev } });
      }
    }
  }
  return out;
}

// ---- watchers ----

interface Spec { name: string; key: Buffer; rangeEnd?: Buffer; prevKv: boolean; filters: number[]; startRevision: number; watchId?: number }
interface Segment { stream: WatchStream; watchId: number; from: number; createdRev: number }
interface Watcher { spec: Spec; start: number; segments: Segment[] }

function inRange(s: Spec, key: Buffer): boolean {
  if (!s.rangeEnd) return key.equals(s.key);
  if (Buffer.compare(key, s.key) < 0) return false;
  return (s.rangeEnd.length === 1 && s.rangeEnd[0] === 0) || Buffer.compare(key, s.rangeEnd) < 0;
}

function expectedFor(w: Watcher, all: ExpectedEvent[]): ExpectedEvent[] {
  const s = w.spec;
  return all.filter((e) => e.rev >= w.start && inRange(s, e.ev.kv.key)
    && !(e.ev.type === EVENT_PUT && s.filters.includes(FILTER_NOPUT))
    && !(e.ev.type === EVENT_DELETE && s.filters.includes(FILTER_NODELETE)))
    .map((e) => ({ rev: e.rev, ev: { ...e.ev, prevKv: s.prevKv ? e.ev.prevKv : null } }));
}

/** The event responses of one segment (after its created response, up to a cancel). */
function segmentResponses(seg: Segment): WatchResp[] {
  return seg.stream.responses.filter((r) => r.watchId === seg.watchId && !r.created && r.events.length > 0);
}

function received(w: Watcher): { events: ExpectedEvent[]; responses: WatchResp[] } {
  const responses = w.segments.flatMap(segmentResponses);
  return { responses, events: responses.flatMap((r) => r.events.map((ev) => ({ rev: ev.kv.modRevision, ev }))) };
}

async function open(stream: WatchStream, spec: Spec, from: number): Promise<Segment> {
  const r = await stream.create({ key: spec.key, rangeEnd: spec.rangeEnd, prevKv: spec.prevKv, filters: spec.filters, startRevision: from, watchId: spec.watchId });
  assert.equal(r.canceled, false, `${spec.name}: create canceled: ${r.cancelReason}`);
  return { stream, watchId: r.watchId, from, createdRev: r.revision };
}

const fmt = (e: ExpectedEvent | undefined): string => e === undefined ? 'nothing'
  : `${e.ev.type === EVENT_PUT ? 'PUT' : 'DELETE'} ${e.ev.kv.key.toString()}@${e.rev} v${e.ev.kv.version} c${e.ev.kv.createRevision} ` +
    `val=${JSON.stringify(e.ev.kv.value.toString())} prev=${e.ev.prevKv ? `${JSON.stringify(e.ev.prevKv.value.toString())}@${e.ev.prevKv.modRevision}` : 'none'}`;

function sameKv(a: Kv | null, x: Kv | null): boolean {
  if (a === null || x === null) return a === x;
  return a.key.equals(x.key) && a.value.equals(x.value) && a.createRevision === x.createRevision
    && a.modRevision === x.modRevision && a.version === x.version && a.lease === x.lease;
}

/** Every property for one watcher; returns a list of problems (empty if exact). */
function check(w: Watcher, all: ExpectedEvent[]): string[] {
  const problems: string[] = [];
  const want = expectedFor(w, all);
  const { events: got, responses } = received(w);
  // One revision's events in one response (no fragment asked), responses in revision order.
  const respOfRev = new Map<number, number>();
  let lastRev = 0;
  responses.forEach((r, i) => {
    for (const e of r.events) {
      const rev = e.kv.modRevision;
      if (rev < lastRev) problems.push(`response #${i}: revision ${rev} after ${lastRev}`);
      lastRev = rev;
      const seen = respOfRev.get(rev);
      if (seen !== undefined && seen !== i) problems.push(`revision ${rev} split over responses #${seen} and #${i}`);
      respOfRev.set(rev, i);
      if (r.revision < rev) problems.push(`response #${i}: header revision ${r.revision} < event revision ${rev}`);
    }
    if (r.fragment) problems.push(`response #${i}: fragment set without fragment requested`);
  });
  const n = Math.max(want.length, got.length);
  for (let i = 0; i < n && problems.length < 8; i++) {
    const a = got[i];
    const x = want[i];
    if (!a || !x || a.ev.type !== x.ev.type || !sameKv(a.ev.kv, x.ev.kv) || !sameKv(a.ev.prevKv, x.ev.prevKv)) {
      problems.push(`event #${i}: got ${fmt(a)}; want ${fmt(x)}`);
    }
  }
  if (got.length !== want.length) problems.push(`${got.length} events received, ${want.length} expected`);
  return problems.map((p) => `${w.spec.name} (start ${w.start}): ${p}`);
}

async function waitDelivered(watchers: Watcher[], all: ExpectedEvent[]): Promise<void> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  for (;;) {
    const behind = watchers.filter((w) => {
      const want = expectedFor(w, all);
      const got = received(w).events;
      return want.length > 0 && !got.some((e) => e.rev === want[want.length - 1]!.rev);
    });
    if (behind.length === 0) break;
    if (Date.now() > deadline) break; // check() reports what is missing
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS)); // late duplicates would show up here
}

function makeSpecs(rnd: () => number, n: number, pastFrom: number, pastTo: number, tag: string): Spec[] {
  const specs: Spec[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 5;
    let s: Spec;
    const prevKv = rnd() < 0.5;
    const f = rnd();
    const filters = f < 0.15 ? [FILTER_NOPUT] : f < 0.3 ? [FILTER_NODELETE] : [];
    const startRevision = rnd() < 0.35 ? pastFrom + Math.floor(rnd() * (pastTo - pastFrom + 1)) : 0;
    if (kind <= 1) s = { name: `${tag}${i}:key`, key: b(pick(rnd, KEYS)), prevKv, filters, startRevision };
    else if (kind === 2) s = { name: `${tag}${i}:prefix`, key: b(pick(rnd, ['w/', 'w/a/', 'w/b/', 'w/c/', 'w/a/1'])), prevKv, filters, startRevision };
    else if (kind === 3) s = { name: `${tag}${i}:fromkey`, key: b(pick(rnd, KEYS)), rangeEnd: Buffer.from([0]), prevKv, filters, startRevision };
    else s = { name: `${tag}${i}:range`, key: b('w/a/05'), rangeEnd: b('w/b/03'), prevKv, filters, startRevision };
    if (kind === 2) s.rangeEnd = prefixEnd(s.key);
    if (rnd() < 0.2) s.watchId = 1000 + i + (tag === 'late' ? 500 : 0);
    specs.push(s);
  }
  return specs;
}

async function startWatcher(stream: WatchStream, spec: Spec): Promise<Watcher> {
  const seg = await open(stream, spec, spec.startRevision);
  const start = spec.startRevision === 0 ? seg.createdRev + 1 : spec.startRevision;
  return { spec, start, segments: [seg] };
}

/** Resumes w on a new stream from its last seen revision + 1 (or its start if it saw nothing). */
async function resume(w: Watcher, stream: WatchStream): Promise<void> {
  const got = received(w).events;
  const from = got.length > 0 ? got[got.length - 1]!.rev + 1 : w.start;
  w.segments.push(await open(stream, { ...w.spec, watchId: undefined }, from));
}

test('many watchers, 4 concurrent writers: every watcher sees exactly its events; a cut stream resumes exactly', async () => {
  const rnd = mulberry32(SEED);
  const t0 = Date.now();
  // Warm-up history, so watchers can start at past revisions.
  for (let i = 0; i < WARMUP_OPS; i++) await randomWrite(rnd, 'warm');
  const warmEnd = (await kv.range({ key: b('w/') })).header.revision;

  const streams = [new WatchStream(watchConn), new WatchStream(watchConn), new WatchStream(watchConn)];
  const early = makeSpecs(rnd, 36, 2, warmEnd, 'early');
  const watchers: Watcher[] = [];
  for (let i = 0; i < early.length; i++) watchers.push(await startWatcher(streams[i % 3]!, early[i]!));

  let done = 0;
  const total = WRITERS * OPS_PER_WRITER;
  const writers = Array.from({ length: WRITERS }, async (_, wi) => {
    const wr = mulberry32(SEED * 31 + wi);
    for (let i = 0; i < OPS_PER_WRITER; i++) { await randomWrite(wr, `w${wi}.${i}`); done++; }
  });
  const until = async (n: number) => { while (done < n) await new Promise((r) => setTimeout(r, 2)); };

  // Watchers created while the writers run.
  const lateSpecs = makeSpecs(rnd, 14, Math.max(2, warmEnd - 50), warmEnd, 'late');
  const lateTask = (async () => {
    await until(Math.floor(total * 0.2));
    for (let i = 0; i < lateSpecs.length; i++) watchers.push(await startWatcher(streams[i % 2]!, lateSpecs[i]!));
  })();

  // Cut stream 2 mid-flight; resume each of its watchers on a new stream.
  let resumed = 0;
  const cutTask = (async () => {
    await until(Math.floor(total * 0.5));
    await lateTask;
    streams[2]!.cut();
    const fresh = new WatchStream(watchConn);
    streams.push(fresh);
    for (const w of watchers.filter((x) => x.segments[x.segments.length - 1]!.stream === streams[2])) { await resume(w, fresh); resumed++; }
  })();

  await Promise.all([...writers, lateTask, cutTask]);
  const finalRev = (await kv.range({ key: b('w/') })).header.revision;
  const all = replay(finalRev);
  await waitDelivered(watchers, all);
  const problems = watchers.flatMap((w) => check(w, all));
  for (const s of streams) s.close();
  const nEvents = watchers.reduce((a, w) => a + received(w).events.length, 0);
  console.log(`seed ${SEED}: ${history.size} revisions, ${watchers.length} watchers (${resumed} resumed after a cut), ` +
    `${nEvents} events checked, ${Date.now() - t0} ms`);
  assert.ok(resumed > 0, 'some watchers were on the cut stream');
  assert.deepEqual(problems.slice(0, 40), [], `seed ${SEED}: ${problems.length} problems`);
});

test('a watch from a compacted revision: created, then canceled with compact_revision', async () => {
  const rev = (await kv.range({ key: b('w/') })).header.revision;
  for (let i = 0; i < 5; i++) await put(`w/a/0${i}`, b(`compact-${i}`));
  const compactAt = rev + 3;
  await kv.compact(compactAt);
  const s = new WatchStream(watchConn);
  try {
    const created = await s.create({ key: b('w/'), rangeEnd: prefixEnd(b('w/')), startRevision: rev - 10 });
    assert.equal(created.created, true);
    const canceled = await s.waitFor((r) => r.watchId === created.watchId && r.canceled, 5000, 'the compaction cancel');
    assert.equal(canceled.compactRevision, compactAt, 'compact_revision is the compacted revision');
    assert.equal(canceled.events.length, 0);
    // A watch at the compacted revision itself is still served (etcd: start_revision < compact rev is compacted).
    const ok = await s.create({ key: b('w/a/04'), startRevision: compactAt });
    const ev = await s.waitFor((r) => r.watchId === ok.watchId && r.events.length > 0, 5000, 'events from the compaction revision');
    assert.equal(ev.events[0]!.kv.modRevision, rev + 5);
    assert.equal(s.responses.filter((r) => r.watchId === ok.watchId && r.canceled).length, 0);
  } finally {
    s.close();
  }
});

test('a slow client (stops reading during a burst) gets every event after it resumes', async () => {
  const conn = newClient(server.endpoint);
  const s = new WatchStream(conn);
  const startRev = (await kv.range({ key: b('s/') })).header.revision + 1;
  const specs: Spec[] = [
    { name: 'slow:prefix', key: b('s/'), rangeEnd: prefixEnd(b('s/')), prevKv: true, filters: [], startRevision: startRev },
    { name: 'slow:key', key: b('s/0007'), prevKv: false, filters: [], startRevision: 0 },
    { name: 'slow:nodelete', key: b('s/'), rangeEnd: prefixEnd(b('s/')), prevKv: false, filters: [FILTER_NODELETE], startRevision: startRev },
  ];
  const watchers: Watcher[] = [];
  try {
    for (const spec of specs) watchers.push(await startWatcher(s, spec));
    s.call.pause();
    const big = Buffer.alloc(4096, 'x');
    const N = 1500;
    let next = 0;
    // ~6 MB of events for the prefix watchers: far beyond the HTTP/2 windows, so the server must hold back.
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N) {
        const i = next++;
        // Every 10th write deletes a key the others put (7 is coprime to 40: all keys in turn).
        if (i % 10 === 9) await del(`s/${String((i * 7) % 40).padStart(4, '0')}`);
        else await put(`s/${String(i % 40).padStart(4, '0')}`, Buffer.concat([b(`${i}:`), big]));
      }
    }));
    const receivedWhilePaused = s.responses.length;
    await new Promise((r) => setTimeout(r, 1000));
    s.call.resume();
    const finalRev = (await kv.range({ key: b('s/') })).header.revision;
    const all = replay(finalRev);
    await waitDelivered(watchers, all);
    const problems = watchers.flatMap((w) => check(w, all));
    // Far fewer responses than revisions means the server held the stream back and caught it up from storage.
    const prefixResponses = received(watchers[0]!).responses.length;
    console.log(`slow client: ${receivedWhilePaused} responses read before resuming (the created ones); ` +
      `the prefix watcher then got ${expectedFor(watchers[0]!, all).length} events in ${prefixResponses} responses`);
    assert.deepEqual(problems.slice(0, 40), [], `${problems.length} problems`);
  } finally {
    s.close();
    conn.close();
  }
});
