// etcd 3.4's v3compactor schedules, driven by a fake clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoCompactor, REVISION_MODE_INTERVAL_MS } from '../../src/member/auto-compactor.js';
import { ConfigError, parseAutoCompaction } from '../../src/common/config.js';
import { Errors } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/log.js';

const log = createLogger('error', { name: 'test' });

class FakeClock {
  t = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => { timer.live = false; } };
  };
  /** Advances time, firing due timers in order; lets their async work settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.t = end;
  }
}

test('retention parses as etcd parses it', () => {
  assert.deepEqual(parseAutoCompaction('periodic', '1'), { mode: 'periodic', retentionMs: 3600_000 });
  assert.deepEqual(parseAutoCompaction('periodic', '30m'), { mode: 'periodic', retentionMs: 1800_000 });
  assert.deepEqual(parseAutoCompaction('revision', '1000'), { mode: 'revision', revisions: 1000 });
  assert.equal(parseAutoCompaction('periodic', '0'), null);
  assert.throws(() => parseAutoCompaction('period', '1'), (e: unknown) => e instanceof ConfigError && e.message === 'unknown auto-compaction-mode "period"');
  assert.throws(() => parseAutoCompaction('periodic', 'soon'), ConfigError);
});

test('periodic, 10 s retention: first compaction after 10 s at the revision of 10 s ago, then every 10 s', async () => {
  const clock = new FakeClock();
  let rev = 1;
  const compacted: number[] = [];
  const c = new AutoCompactor({ mode: 'periodic', retentionMs: 10_000 }, {
    isLeader: () => true, revision: () => rev, compact: async (r) => { compacted.push(r); }, log, now: clock.now, setTimer: clock.setTimer,
  });
  assert.equal(c.intervalMs, 1000);
  c.start();
  // One revision per 100 ms of clock.
  for (let i = 0; i < 250; i++) { rev++; await clock.advance(100); }
  c.stop();
  // etcd samples at the top of each 1 s round and keeps 11: at t=10 s the oldest is the sample of t=0
  // (rev 1); at t=20 s, with samples up to t=19 s, it is the one of t=9 s (rev 91).
  assert.deepEqual(compacted, [1, 91]);
});

test('periodic: a follower compacts nothing; a failure is retried at the next sample; "compacted" counts as done', async () => {
  const clock = new FakeClock();
  let leader = false;
  let fail = 1;
  const compacted: number[] = [];
  const c = new AutoCompactor({ mode: 'periodic', retentionMs: 5_000 }, {
    isLeader: () => leader, revision: () => clock.t / 100 + 1, log, now: clock.now, setTimer: clock.setTimer,
    compact: async (r) => {
      if (fail-- > 0) throw Errors.timeout();
      compacted.push(r);
      throw Errors.compacted();
    },
  });
  c.start();
  await clock.advance(8_000);
  assert.deepEqual(compacted, []);
  leader = true;
  await clock.advance(500); // t=8.5 s: fails once
  assert.deepEqual(compacted, []);
  await clock.advance(500); // t=9 s: retried; the oldest of 11 samples (up to 8.5 s) is the one of 3.5 s
  assert.deepEqual(compacted, [36]);
  await clock.advance(4_500); // the next only 5 s after the success
  assert.deepEqual(compacted, [36]);
  await clock.advance(500); // t=14 s: the sample of 8.5 s
  assert.deepEqual(compacted, [36, 86]);
  c.stop();
});

test('revision mode: every 5 minutes, current minus retention, never the same revision twice', async () => {
  const clock = new FakeClock();
  let rev = 50;
  const compacted: number[] = [];
  const c = new AutoCompactor({ mode: 'revision', revisions: 100 }, {
    isLeader: () => true, revision: () => rev, compact: async (r) => { compacted.push(r); }, log, now: clock.now, setTimer: clock.setTimer,
  });
  c.start();
  await clock.advance(REVISION_MODE_INTERVAL_MS); // 50 - 100 <= 0: nothing
  rev = 1000;
  await clock.advance(REVISION_MODE_INTERVAL_MS);
  await clock.advance(REVISION_MODE_INTERVAL_MS); // unchanged: not again
  rev = 1500;
  await clock.advance(REVISION_MODE_INTERVAL_MS);
  c.stop();
  assert.deepEqual(compacted, [900, 1400]);
});
