// The per-stage latency histograms behind /debug/latency (member/stages.ts)
// and the tracker that stamps a write's stages (member/stage-tracker.ts):
// what a finished write records, the percentiles read back, reset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StageHistograms } from '../../src/member/stages.js';
import { StageTracker, newClock } from '../../src/member/stage-tracker.js';

test('percentiles, mean and max of one stage, within two significant digits', () => {
  const h = new StageHistograms();
  for (let v = 1; v <= 1000; v++) h.record('Put', 'total', v);
  const s = h.snapshot().rpcs['Put']!['total']!;
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50 - 500) <= 5, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 990) <= 10, `p99 ${s.p99}`);
  assert.ok(Math.abs(s.mean - 500) <= 5, `mean ${s.mean}`);
  assert.ok(Math.abs(s.max - 1000) <= 10, `max ${s.max}`);
});

test('values are clamped to 1 us .. 60 s, and rounded', () => {
  const h = new StageHistograms();
  h.record('Range', 'total', 0.2);
  h.record('Range', 'total', 120e6);
  const s = h.snapshot().rpcs['Range']!['total']!;
  assert.equal(s.count, 2);
  assert.ok(s.p50 >= 1 && s.p50 <= 2, `p50 ${s.p50}`);
  assert.ok(s.max >= 60e6 * 0.99 && s.max <= 60e6 * 1.01, `max ${s.max}`);
});

test('a leader\'s write records its five stages and the total, in stage order', () => {
  const h = new StageHistograms();
  const tracker = new StageTracker(h);
  const c = newClock('Put', 1000, 1000.1);
  c.index = 7;
  tracker.proposed(c);
  c.tDurable = 1000.3; // durableTo/committedTo stamp performance.now(); set fixed times instead
  c.tCommitted = 1000.4;
  tracker.record(c, 1000.6, 1001);
  const put = h.snapshot().rpcs['Put']!;
  assert.deepEqual(Object.keys(put), ['received->proposed', 'proposed->durable', 'durable->committed', 'committed->applied', 'applied->responded', 'total']);
  const near = (got: number, want: number) => assert.ok(Math.abs(got - want) <= want * 0.02 + 1, `${got} vs ${want}`);
  near(put['received->proposed']!.p50, 100);
  near(put['proposed->durable']!.p50, 200);
  near(put['durable->committed']!.p50, 100);
  near(put['committed->applied']!.p50, 200);
  near(put['applied->responded']!.p50, 400);
  near(put['total']!.p50, 1000);
  assert.match(h.text(), /^Put +total +1 /m);
});

test('reset empties every histogram', () => {
  const h = new StageHistograms();
  h.record('Put', 'total', 10);
  h.record('Txn', 'total', 10);
  h.reset();
  assert.deepEqual(h.snapshot().rpcs, { Put: {}, Txn: {} });
  h.record('Put', 'total', 20);
  assert.equal(h.snapshot().rpcs['Put']!['total']!.count, 1);
});
