// A bounded random mix over a small key set, in the spirit of etcd's
// robustness traffic: put (some with prev_kv), delete (prev_kv), txn CAS on the
// mod revision a client last saw, linearizable and serializable single-key
// reads. Each client is pinned to one member, runs one request at a time, and
// writes values unique in the whole run. Choices come from a seeded generator
// (the timing of a real cluster does not).

import { makeRng } from '../../../src/raft/rng.js';
import { KvClient } from '../../integration/kv-client.js';
import type { Cluster } from './cluster.js';
import type { KvInput } from './history.js';
import type { Recorder } from './recorder.js';

export interface TrafficOptions {
  seed: number;
  clients: number;
  keys: number;
  prefix: string;
  deadlineMs: number;
  /** Back-off after a failed request (so a dead member does not eat the op budget). */
  failPauseMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Traffic {
  done = 0;
  private stopping = false;
  readonly kvs: KvClient[];
  private running: Promise<void>[] = [];

  constructor(private readonly cluster: Cluster, private readonly rec: Recorder, private readonly o: TrafficOptions) {
    this.kvs = Array.from({ length: o.clients }, (_, c) => new KvClient(cluster.endpoint(c % cluster.size)));
  }

  key(k: number): string { return `${this.o.prefix}k${k}`; }

  start(): void {
    this.running = this.kvs.map((_, c) => this.client(c));
  }

  private async client(c: number): Promise<void> {
    const rnd = makeRng((this.o.seed * 1000003 + c * 7919) >>> 0);
    const member = c % this.cluster.size;
    const seen = new Map<string, number>(); // key -> mod revision last seen (0: absent)
    for (let n = 0; !this.stopping; n++) {
      const key = this.key(Math.floor(rnd() * this.o.keys));
      const value = `c${c}-${n}`;
      const x = rnd();
      let input: KvInput;
      if (x < 0.30) input = { type: 'put', key, value, prevKv: rnd() < 0.5 };
      else if (x < 0.40) input = { type: 'delete', key, prevKv: true };
      else if (x < 0.55) input = { type: 'cas', key, cmp: { target: 'mod', modRevision: seen.get(key) ?? 0 }, value };
      else if (x < 0.85) input = { type: 'get', key, serializable: false };
      else input = { type: 'get', key, serializable: true };
      const op = await this.rec.run(this.kvs[c]!, c, this.cluster.label(member), input, this.o.deadlineMs);
      this.done++;
      const out = op.output;
      if (out?.type === 'get' || (out?.type === 'cas' && !out.succeeded)) seen.set(key, out.kv?.modRevision ?? 0);
      else if (out?.type === 'put' || (out?.type === 'cas' && out.succeeded)) seen.set(key, out.revision);
      else if (out?.type === 'delete') seen.set(key, 0);
      if (op.outcome !== 'ok') await sleep(this.o.failPauseMs);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  close(): void { for (const k of this.kvs) k.close(); }
}
