// The simulator must catch an ordering bug in the production ReadyDriver: a driver
// whose followers acknowledge appends (MsgAppResp) before their barrier is durable.
// If these tests ever pass with the bug in, the simulator no longer exercises the
// member's persist/send ordering. Control: the same seeds pass with the real driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadyDriver } from '../../src/raft/driver.js';
import { MessageType, type Message } from '../../src/raft/types.js';
import { runSeed, type MakeDriver, type SeedResult } from './cluster.js';

/** THE RULE broken: append acknowledgements leave before the entries they promise are durable. */
class EagerAckDriver extends ReadyDriver {
  protected override sendsEarly(m: Message): boolean {
    return super.sendsEarly(m) || (m.type === MessageType.MsgAppResp && !m.reject);
  }
}
const eager: MakeDriver = (raft, sink) => new EagerAckDriver(raft, sink);

function firstFailure(from: number, to: number, run: (seed: number) => SeedResult, accept: (r: SeedResult) => boolean): SeedResult | undefined {
  for (let s = from; s <= to; s++) {
    const r = run(s);
    if (!r.ok && accept(r)) return r;
  }
  return undefined;
}

test('early acknowledgements: the durability check at crash catches them within 20 seeds', () => {
  const f = firstFailure(1, 20, (s) => runSeed(s, 3, { makeDriver: eager }), () => true);
  assert.ok(f, 'the injected bug went unnoticed for 20 seeds');
  assert.match(f.error ?? '', /durability: node \d+ acknowledged up to \d+ in term \d+ but crashes with a durable log to \d+/);
  // Control: the real driver passes the same seed.
  assert.ok(runSeed(f.seed, 3).ok, `seed ${f.seed} fails with the real driver too`);
});

test('early acknowledgements: without that check, a committed entry is lost (seed 117 among the first 150)', () => {
  // Only the consequence checks: leader completeness, commit safety, state machine safety,
  // lost acknowledged writes. (The core's own assertion "commit beyond the last index",
  // a leader's commit for entries the follower lost, fires on many seeds; skip those.)
  const f = firstFailure(1, 150, (s) => runSeed(s, 3, { makeDriver: eager, config: { checkAcks: false } }),
    (r) => /^seed \d+ t=\d+: (leader completeness|commit safety|state machine safety|acknowledged|log matching)/.test(r.error ?? ''));
  assert.ok(f, 'no lost commit found in 150 seeds with the injected bug');
  assert.ok(runSeed(f.seed, 3).ok, `seed ${f.seed} fails with the real driver too`);
});
