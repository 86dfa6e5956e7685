// The traffic's watcher: one watch on the run's key prefix with prev_kv from
// the start revision. When its stream breaks (member killed) or stalls
// (member paused or cut off) it resumes on the next member from the last
// revision it saw + 1; cutAndResume() does the same on purpose, so every run
// exercises resumption. Also fetchLog(): the full event log of the prefix,
// read with a fresh watch, for the checkers.

import { WatchStream, newClient, EVENT_DELETE, type WatchResp, type Kv } from '../../integration/watch-client.js';
import { prefixEnd } from '../../integration/kv-client.js';
import type { Cluster } from './cluster.js';
import type { KvSnap, WatchEventRec, WatchHistory } from './history.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CREATE_TIMEOUT_MS = 3000;

const snap = (kv: Kv | null): KvSnap | null => (kv ? { value: kv.value.toString('utf8'), modRevision: kv.modRevision } : null);
export function eventsOf(r: WatchResp): WatchEventRec[] {
  return r.events.map((e) => ({
    type: e.type === EVENT_DELETE ? 'delete' : 'put', key: e.kv.key.toString('utf8'),
    value: e.type === EVENT_DELETE ? '' : e.kv.value.toString('utf8'), modRevision: e.kv.modRevision, prevKv: snap(e.prevKv),
  }));
}

export class Watcher {
  readonly history: WatchHistory;
  lastRevision: number;
  private stream: WatchStream | null = null;
  private client: ReturnType<typeof newClient> | null = null;
  private member: number;
  private closed = false;
  private resuming: Promise<void> | null = null;

  constructor(private readonly cluster: Cluster, private readonly prefix: string, startRevision: number, member: number) {
    this.history = { startRevision, streams: [], responses: [] };
    this.lastRevision = startRevision - 1;
    this.member = member;
  }

  async start(): Promise<void> { await this.open(); }

  /** The member the current stream is on. */
  get memberIndex(): number { return this.member; }

  private async open(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      const i = this.member;
      const streamNo = this.history.streams.length;
      const startRevision = this.lastRevision + 1;
      this.client = newClient(this.cluster.endpoint(i));
      const s = new WatchStream(this.client);
      const rec = { stream: streamNo, member: this.cluster.label(i), startRevision, end: '' };
      this.history.streams.push(rec);
      this.stream = s;
      s.onResponse((r) => {
        if (this.stream !== s || r.events.length === 0) return;
        const events = eventsOf(r);
        this.history.responses.push({ stream: streamNo, revision: r.revision, events });
        this.lastRevision = Math.max(this.lastRevision, events[events.length - 1]!.modRevision);
      });
      s.call.on('error', (e) => { if (this.stream === s) { rec.end = e.message; void this.resume('error'); } });
      try {
        await s.create({ key: Buffer.from(this.prefix), rangeEnd: prefixEnd(Buffer.from(this.prefix)), startRevision, prevKv: true }, CREATE_TIMEOUT_MS);
        return;
      } catch (e) {
        rec.end = `create failed: ${(e as Error).message}`;
        this.drop();
        this.member = (this.member + 1) % this.cluster.size;
        await sleep(100);
      }
    }
  }

  private drop(): void {
    const s = this.stream;
    this.stream = null;
    s?.close();
    this.client?.close();
  }

  /** Closes the current stream and resumes on the next member from the last seen revision + 1. */
  resume(why: string): Promise<void> {
    if (this.resuming) return this.resuming;
    const rec = this.history.streams[this.history.streams.length - 1];
    if (rec && !rec.end) rec.end = why;
    this.drop();
    this.member = (this.member + 1) % this.cluster.size;
    this.resuming = (async () => { await sleep(50); await this.open(); })().finally(() => { this.resuming = null; });
    return this.resuming;
  }

  cutAndResume(): Promise<void> { return this.resume('cut'); }

  /** Waits up to timeoutMs for the current stream to reach `revision`, without moving it; false if it did not. */
  async settle(revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastRevision < revision) {
      if (Date.now() > deadline) return false;
      await sleep(20);
    }
    return true;
  }

  /** Waits until the watcher saw `revision`; a stream making no progress for stallMs is resumed elsewhere. */
  async waitFor(revision: number, timeoutMs: number, stallMs = 4000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = this.lastRevision;
    let lastMove = Date.now();
    while (this.lastRevision < revision) {
      if (Date.now() > deadline) throw new Error(`watcher stuck at revision ${this.lastRevision}, wanted ${revision}`);
      if (this.lastRevision !== last) { last = this.lastRevision; lastMove = Date.now(); }
      if (Date.now() - lastMove > stallMs) { await this.resume('stalled'); lastMove = Date.now(); }
      await sleep(20);
    }
  }

  close(): void {
    this.closed = true;
    const rec = this.history.streams[this.history.streams.length - 1];
    if (rec && !rec.end) rec.end = 'closed';
    this.drop();
  }
}

/** Every event of the prefix from startRevision up to `until` (a revision the log must reach), from one member. */
export async function fetchLog(endpoint: string, prefix: string, startRevision: number, until: number, timeoutMs = 20_000): Promise<WatchEventRec[]> {
  const client = newClient(endpoint);
  const s = new WatchStream(client);
  try {
    await s.create({ key: Buffer.from(prefix), rangeEnd: prefixEnd(Buffer.from(prefix)), startRevision, prevKv: true });
    await s.waitFor((r) => r.events.some((e) => e.kv.modRevision >= until), timeoutMs, `the log of ${prefix} up to revision ${until} from ${endpoint}`);
    return s.responses.flatMap(eventsOf).filter((e) => e.modRevision <= until);
  } finally {
    s.close();
    client.close();
  }
}
