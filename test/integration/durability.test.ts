// Invariant 1 on one member: an acknowledged write survives kill -9.
//
// A writer keeps WRITERS puts in flight (unique keys and values) while the
// test kill -9s etsd at a seeded-random moment, restarts it on the same data
// dir, and checks the state it finds against what was acknowledged.
// Set ETSD_TEST_SEED to replay a run, ETSD_DURABILITY_CYCLES to change the count.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir, describeExit } from './etsd-process.js';
import { KvClient, b, isGrpcError, prefixEnd } from './kv-client.js';
import { makeRng } from '../../src/raft/rng.js';

const CYCLES = Number(process.env['ETSD_DURABILITY_CYCLES'] ?? 40);
const WRITERS = 8;
const KILL_MIN_MS = 50;
const KILL_MAX_MS = 400;
const PUT_DEADLINE_MS = 5_000;
const PREFIX = b('dur/');

const prng = makeRng;

interface Acked { value: Buffer; rev: number }

interface Model {
  /** Every value we ever sent, by key (latin1 of the key bytes). Each key is sent once. */
  sent: Map<string, Buffer>;
  acked: Map<string, Acked>;
  /** Acknowledged revision -> key: two acks with one revision means the revision went backwards. */
  ackedRevs: Map<number, string>;
  /** Keys seen present at some restart, with their mod_revision: they must stay. */
  seen: Map<string, number>;
  maxAckedRev: number;
  lastHeaderRev: number;
}

async function verify(client: KvClient, m: Model, when: string): Promise<{ present: number; headerRev: number }> {
  // Pages of 500 keys, pinned to one revision (see kv-client rangeAll).
  const res = await client.rangeAll(PREFIX, prefixEnd(PREFIX), 500);
  const headerRev = res.header.revision;
  assert.ok(headerRev >= m.maxAckedRev,
    `${when}: header revision ${headerRev} is below the highest acknowledged revision ${m.maxAckedRev}`);
  assert.ok(headerRev >= m.lastHeaderRev,
    `${when}: header revision went backwards: ${headerRev} after ${m.lastHeaderRev}`);
  const present = new Map<string, number>();
  const modRevs = new Set<number>();
  for (const kv of res.kvs) {
    const k = kv.key.toString('latin1');
    const sent = m.sent.get(k);
    assert.ok(sent, `${when}: key ${kv.key.toString()} was never written by this test`);
    assert.ok(kv.value.equals(sent), `${when}: key ${kv.key.toString()} holds ${kv.value.toString()}, we wrote ${sent.toString()}`);
    assert.equal(kv.version, 1, `${when}: key ${kv.key.toString()} has version ${kv.version}: a put was applied twice`);
    assert.equal(kv.createRevision, kv.modRevision, `${when}: key ${kv.key.toString()} create ${kv.createRevision} != mod ${kv.modRevision}`);
    assert.ok(kv.modRevision <= headerRev, `${when}: key ${kv.key.toString()} mod ${kv.modRevision} > header ${headerRev}`);
    assert.ok(!modRevs.has(kv.modRevision), `${when}: two keys share mod_revision ${kv.modRevision}`);
    modRevs.add(kv.modRevision);
    present.set(k, kv.modRevision);
  }
  for (const [k, a] of m.acked) {
    const rev = present.get(k);
    assert.notEqual(rev, undefined, `${when}: acknowledged put of ${k} (revision ${a.rev}) is missing`);
    assert.equal(rev, a.rev, `${when}: acknowledged put of ${k} has mod_revision ${rev}, acknowledged at ${a.rev}`);
  }
  for (const [k, rev] of m.seen) {
    assert.equal(present.get(k), rev, `${when}: key ${k} was present at mod_revision ${rev} after an earlier restart, now ${present.get(k) ?? 'absent'}`);
  }
  // The only writes are these single-key puts on a fresh store (revision 1), so
  // every revision step must be one visible key: no lost and no replayed entries.
  assert.equal(present.size, headerRev - 1,
    `${when}: ${present.size} keys present but the store is at revision ${headerRev} (expected ${headerRev - 1} puts applied)`);
  for (const [k, rev] of present) m.seen.set(k, rev);
  m.lastHeaderRev = headerRev;
  return { present: present.size, headerRev };
}

test('acknowledged puts survive kill -9 at random moments', { timeout: 170_000 }, async (t) => {
  const seed = process.env['ETSD_TEST_SEED'] !== undefined ? Number(process.env['ETSD_TEST_SEED']) : (Date.now() ^ (process.pid << 16)) >>> 0;
  const rand = prng(seed);
  console.log(`durability: seed=${seed} (replay with ETSD_TEST_SEED=${seed}), cycles=${CYCLES}, writers=${WRITERS}`);
  t.diagnostic(`seed=${seed}`);

  const dir = makeTempDir('durability');
  const [clientPort, peerPort] = await freePorts(2);
  let proc: EtsdProcess | null = null;
  let client: KvClient | null = null;
  t.after(async () => {
    client?.close();
    if (proc) await proc.kill('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  });

  const m: Model = { sent: new Map(), acked: new Map(), ackedRevs: new Map(), seen: new Map(), maxAckedRev: 0, lastHeaderRev: 0 };
  let unanswered = 0;
  const start = { dataDir: dir, clientPort: clientPort!, peerPort: peerPort!, shards: 1 };

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    // A test that timed out is cancelled, but its body runs on unless it looks: stop starting members.
    if (t.signal.aborted) return;
    proc = await EtsdProcess.startReady(start);
    client = new KvClient(proc.endpoint);
    await verify(client, m, `cycle ${cycle} after restart`);

    let killed = false;
    const errorsBeforeKill: string[] = [];
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; !killed; i++) {
        const keyStr = `dur/${String(cycle).padStart(3, '0')}/${w}/${String(i).padStart(6, '0')}`;
        const key = b(keyStr);
        const value = b(`v:${seed}:${keyStr}:${Math.floor(rand() * 1e9).toString(36)}`);
        m.sent.set(key.toString('latin1'), value);
        try {
          const r = await client!.put({ key, value }, PUT_DEADLINE_MS);
          const rev = r.header.revision;
          const k = key.toString('latin1');
          const other = m.ackedRevs.get(rev);
          assert.equal(other, undefined, `revision ${rev} acknowledged for ${keyStr} and earlier for ${other}: revisions went backwards`);
          assert.ok(rev > m.lastHeaderRev, `put of ${keyStr} acknowledged at ${rev}, not above the revision seen at restart (${m.lastHeaderRev})`);
          m.ackedRevs.set(rev, k);
          m.acked.set(k, { value, rev });
          if (rev > m.maxAckedRev) m.maxAckedRev = rev;
        } catch (err) {
          if (!isGrpcError(err)) throw err;
          unanswered++;
          if (!killed) errorsBeforeKill.push(err.message);
          return; // the member is down (or going): this writer is done for the cycle
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const delay = KILL_MIN_MS + Math.floor(rand() * (KILL_MAX_MS - KILL_MIN_MS));
    await new Promise((r) => setTimeout(r, delay));
    killed = true; // set first: errors from here on are the kill's doing
    const exit = await proc.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL', `etsd exited on its own before the kill (${describeExit(exit)}):\n${proc.logTail()}`);
    await Promise.all(writers);
    client.close();
    client = null;
    assert.deepEqual(errorsBeforeKill, [], `cycle ${cycle}: puts failed while the member was up`);
  }

  proc = await EtsdProcess.startReady(start);
  client = new KvClient(proc.endpoint);
  const final = await verify(client, m, 'final restart');
  const exit = await proc.kill('SIGTERM');
  assert.equal(exit.code, 0, `SIGTERM stop: ${describeExit(exit)}\n${proc.logTail()}`);
  console.log(`durability: ${m.sent.size} puts sent, ${m.acked.size} acknowledged, ${unanswered} unanswered, ` +
    `${final.present} present at revision ${final.headerRev}`);
});
