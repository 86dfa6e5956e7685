// Fault runs over real 3-member clusters, etsd and real etcd 3.4 side by
// side: one short run per fault, each under the traffic mix and a resuming
// watcher, the whole history through every checker. etcd passing the same
// runs is what lets us trust the checkers; a run that fails prints its seed
// and the command that replays it (scripts/faults.mjs runs long campaigns).
//
// One cluster per target, reused by its runs (each on its own key prefix;
// every fault is healed before its run ends), with a raft log compaction
// every 100 entries so that a follower kept away needs a snapshot. Then, on
// their own clusters: a disk-full WAL (tmpfs), a power cut (etsd: unsynced
// writes dropped, test/faults/powercut/), and etsd with deliberate bugs the
// checkers must catch.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { FailpointName } from '../../src/common/failpoints.js';
import { Cluster, ETCD_BIN, MountError, type ClusterKind } from './lib/cluster.js';
import { clusterFlags, clusterOptions, type FaultKind } from './lib/faults.js';
import { runOnce, summary, type RunReport } from './lib/run.js';

const FAULT_RUNS: FaultKind[] = ['kill-leader', 'kill-follower', 'stop-leader', 'partition-leader',
  'kill-majority', 'drop-leader-to-follower', 'snapshot-follower', 'replace-follower'];
/** The crash cycle's subset for npm test (all of CRASH_POINTS: `node scripts/faults.mjs --failpoints cycle`). */
// snapshotBeforeInstall found a bug: a member crashed there could not restart (src/member/boot-commit.ts).
const CRASH_SUBSET: FailpointName[] = ['walAfterFsync', 'applyBeforeCommit', 'snapshotBeforeInstall'];
/** Small on purpose: each run stays within tens of seconds on 2 cores. */
const OPS = 200;
const SEED = 1400;

/**
 * etcd 3.4.23's known watch bug (etcd-io/etcd#15271, fixed in 3.4.25 and 3.5.8): after a snapshot
 * install, a synced watcher on that member is resynced from its stale minRev and gets events it had
 * already, as "traveling back in time". Our checkers find it when the run's watcher is on the member
 * that installed the snapshot; it is reported, not failed, for etcd only.
 */
const ETCD_15271 = new Set(['ordered', 'unique', 'atomic']);

/** What each fault must have done for its run to count (the checks pass trivially otherwise). */
function assertExercised(fault: FaultKind, r: RunReport): void {
  assert.ok(r.fault.target !== undefined, 'the fault was injected');
  switch (fault) {
    case 'drop-leader-to-follower': assert.ok((r.fault.discarded ?? 0) > 0, 'the proxy discarded some of the leader\'s messages'); break;
    case 'snapshot-follower': assert.ok((r.fault.snapshotsInstalled ?? 0) >= 1, `the follower installed a raft snapshot (${r.fault.fillerWrites} filler writes)`); break;
    case 'replace-follower': assert.notEqual(r.fault.ids?.newId, r.fault.ids?.oldId, 're-added under a new member id'); break;
    case 'failpoint-crash': {
      const point = r.fault.target?.split('@')[1];
      assert.equal(r.fault.exited, true, `the member exited: ${r.fault.exitLog}`);
      assert.match(r.fault.exitLog ?? '', new RegExp(`failpoint ${point} hit \\d+: crash`), 'at its failpoint');
      break;
    }
    case 'power-cut':
      assert.equal(r.fault.cutAfterAck, true, 'the cut came right after an acknowledged write');
      assert.ok((r.fault.reverted ?? []).some((m) => m.undone > 0), `unsynced writes were dropped: ${JSON.stringify(r.fault.reverted)}`);
      break;
    case 'disk-full-wal':
      assert.equal(r.fault.exited, true, 'the member with the full WAL disk exited');
      assert.match(r.fault.exitLog ?? '', /no space left on device|ENOSPC/i, 'and said why');
      break;
    default: break;
  }
  // Kill-majority and power-cut spend much of their budget on requests refused while members are down.
  const minChecked = fault === 'kill-majority' || fault === 'power-cut' ? OPS / 4 : OPS / 2;
  assert.ok(r.linChecked > minChecked, `only ${r.linChecked} ops checked`);
  assert.ok(r.logEvents > 0 && r.watchStreams >= 2, 'the watch saw events over at least two streams');
}

function replayOf(kind: ClusterKind, fault: FaultKind, seed: number, point?: FailpointName): string {
  return `node scripts/faults.mjs --target ${kind} --fault ${fault} --seed ${seed} --runs 1 --ops ${OPS}${point ? ` --point ${point}` : ''}`;
}

for (const kind of ['etsd', 'etcd'] as ClusterKind[]) {
  describe(`${kind}: 3 members, one fault per run, every checker`, () => {
    let cluster: Cluster | null = null;
    before(async () => {
      if (kind === 'etcd') assert.ok(existsSync(ETCD_BIN), `real etcd 3.4 is needed at ${ETCD_BIN} (apt-get install etcd-server)`);
      cluster = await Cluster.start(kind, 3, {}, clusterFlags(kind, [...FAULT_RUNS, 'failpoint-crash']));
    });
    after(async () => { await cluster?.close(); });

    FAULT_RUNS.forEach((fault, k) => {
      test(fault, async (t) => {
        const seed = SEED + k;
        const r = await runOnce(cluster!, { fault, seed, ops: OPS, prefix: `/faults-ci/${kind}/${fault}/` });
        t.diagnostic(summary(r));
        let anomalies = r.anomalies;
        if (kind === 'etcd' && fault === 'snapshot-follower') {
          const known = anomalies.filter((a) => ETCD_15271.has(a.check));
          if (known.length > 0) t.diagnostic(`etcd 3.4.23's etcd-io/etcd#15271 (watch events re-sent after a snapshot install): ${known.length} anomalies, e.g. ${known[0]!.detail}`);
          anomalies = anomalies.filter((a) => !ETCD_15271.has(a.check));
        }
        assert.deepEqual(anomalies, [], `anomalies in ${kind} ${fault} seed ${seed}; replay: ${replayOf(kind, fault, seed)}`);
        assertExercised(fault, r);
      });
    });

    // The crash cycle, a subset: a follower restarted with `<point>=crash` reaches it under the traffic.
    if (kind === 'etsd') {
      CRASH_SUBSET.forEach((point, k) => {
        test(`failpoint-crash at ${point}`, async (t) => {
          const seed = SEED + 50 + k;
          const r = await runOnce(cluster!, { fault: 'failpoint-crash', point, seed, ops: OPS, prefix: `/faults-ci/${kind}/crash-${point}/` });
          t.diagnostic(summary(r));
          assert.deepEqual(r.anomalies, [], `anomalies in ${kind} failpoint-crash ${point} seed ${seed}; replay: ${replayOf(kind, 'failpoint-crash', seed, point)}`);
          assertExercised('failpoint-crash', r);
        });
      });
    }
  });

  // etcd panics when its WAL cannot be written; etsd's WAL worker fails and the member exits (a
  // clean fatal). Either way the others go on, nothing acknowledged is lost, and the member comes
  // back once there is space.
  test(`${kind}: disk full on one member's WAL directory (tmpfs)`, async (t) => {
    if (kind === 'etcd' && !existsSync(ETCD_BIN)) assert.fail(`real etcd 3.4 is needed at ${ETCD_BIN}`);
    let cluster: Cluster;
    try {
      cluster = await Cluster.start(kind, 3, {}, clusterFlags(kind, ['disk-full-wal']), clusterOptions('disk-full-wal'));
    } catch (e) {
      if (e instanceof MountError) { t.skip(`mount is not permitted here: ${e.message}`); return; }
      throw e;
    }
    try {
      const seed = SEED + 90;
      const r = await runOnce(cluster, { fault: 'disk-full-wal', seed, ops: OPS, prefix: `/faults-ci/${kind}/disk-full/` });
      t.diagnostic(`${summary(r)}; the member's last words: ${r.fault.exitLog?.split('\n').filter((l) => /space|ENOSPC/i.test(l)).join(' | ')}`);
      assert.deepEqual(r.anomalies, [], `anomalies in ${kind} disk-full-wal seed ${seed}; replay: ${replayOf(kind, 'disk-full-wal', seed)}`);
      assertExercised('disk-full-wal', r);
    } finally {
      await cluster.close();
    }
  });
}

// A power cut: every member killed -9 right after a write was acknowledged, and what each had
// written but not fsync'd dropped from its files (the shim, built with gcc at run time). etsd
// syncs its WAL before it answers, so nothing acknowledged may be lost. etcd cannot be run so:
// a Go binary's raw syscalls bypass LD_PRELOAD.
test('etsd: power cut (every member killed -9, unsynced writes dropped)', async (t) => {
  const cluster = await Cluster.start('etsd', 3, {}, [], clusterOptions('power-cut'));
  try {
    const seed = SEED + 95;
    const r = await runOnce(cluster, { fault: 'power-cut', seed, ops: OPS, prefix: '/faults-ci/etsd/power-cut/' });
    t.diagnostic(`${summary(r)}; dropped: ${JSON.stringify(r.fault.reverted)}`);
    assert.deepEqual(r.anomalies, [], `anomalies in etsd power-cut seed ${seed}; replay: ${replayOf('etsd', 'power-cut', seed)}`);
    assertExercised('power-cut', r);
  } finally {
    await cluster.close();
  }
});

// Trusting the checkers the other way round: etsd with a deliberate bug
// (failpoint rangeBeforeReadIndex=error: linearizable reads served from local
// state, no ReadIndex) must fail them. The leader cut off keeps answering
// reads with what it had while the majority moves on. Found with seeds 7-9 of
// `node scripts/faults.mjs --fault partition-leader --ops 200 --failpoints
// rangeBeforeReadIndex=error` (10-14 anomalies each); seed 7 under no fault
// at all is caught too (one stale read, by the revision-order check). Whether
// a client reads from the cut-off leader after the majority has moved on is
// timing (a CI run with a 118 ms failover saw none with seed 7), so the test
// tries seeds 7, 8, 9 until one is caught.
test('the checkers catch etsd serving linearizable reads without ReadIndex', async (t) => {
  const cluster = await Cluster.start('etsd', 3, { ETSD_FAILPOINTS: 'rangeBeforeReadIndex=error' });
  try {
    const seen: string[] = [];
    for (const seed of [7, 8, 9]) {
      const r = await runOnce(cluster, { fault: 'partition-leader', seed, ops: OPS, prefix: `/faults-ci/bug/no-read-index/${seed}/` });
      t.diagnostic(summary(r));
      const kinds = new Set(r.anomalies.map((a) => a.check));
      if (kinds.has('linearizable') || kinds.has('revision-order')) return;
      seen.push(`seed ${seed}: ${[...kinds].join(', ') || 'no anomalies'}`);
    }
    assert.fail(`stale linearizable reads went unnoticed: ${seen.join('; ')}`);
  } finally {
    await cluster.close();
  }
});

// A second deliberate bug: after a snapshot install, each watcher on that member loses the first
// event delivered to it next (failpoint watchDropAfterInstall=error). The snapshot run lags the
// watcher's member, so its open stream lives through the install; the watch checks must notice.
// `node scripts/faults.mjs --fault snapshot-follower --ops 200 --failpoints watchDropAfterInstall=error`
// caught it with seed 2 (`delete .../k3@27 never delivered`, the reliable check) and with seed 1
// once of three tries: whether the stream gets a delivery before the run moves it is timing, so
// the test tries seeds 2, 3, 4 until one is caught.
test('the checkers catch etsd dropping a watch event after a snapshot install', async (t) => {
  const cluster = await Cluster.start('etsd', 3, { ETSD_FAILPOINTS: 'watchDropAfterInstall=error' }, clusterFlags('etsd', ['snapshot-follower']));
  try {
    const seen: string[] = [];
    for (const seed of [2, 3, 4]) {
      const r = await runOnce(cluster, { fault: 'snapshot-follower', seed, ops: OPS, prefix: `/faults-ci/bug/watch-drop/${seed}/` });
      t.diagnostic(summary(r));
      assert.ok((r.fault.snapshotsInstalled ?? 0) >= 1, 'a snapshot was installed');
      const kinds = new Set(r.anomalies.map((a) => a.check));
      if (kinds.has('reliable') || kinds.has('resumable')) return;
      seen.push(`seed ${seed}: ${[...kinds].join(', ') || 'no anomalies'}`);
    }
    assert.fail(`the lost watch event went unnoticed: ${seen.join('; ')}`);
  } finally {
    await cluster.close();
  }
});

// A third: WAL batches acknowledged at once, written and fsync'd every 300 ms
// (walAckBeforeFsync=error). A kill -9 never caught it (the page cache keeps
// what was written); a power cut right after an acknowledged write loses that
// write from every member's WAL and RocksDB, and the write's revision is
// handed out again. `node scripts/faults.mjs --fault power-cut --ops 200
// --failpoints walAckBeforeFsync=error --seed 10 --runs 10` (two cuts per
// run): 9 caught (21-83 anomalies each), and seed 19 never finished. The bug
// can break raft itself on the restart (votes and entries a member had
// acknowledged are gone: a leader may find a follower "beyond the log" and
// exit, or the cluster serves nothing), so a run that does not finish within
// RUN_LIMIT_MS counts as not caught and the next seed is tried, on a fresh
// cluster.
test('the checkers catch etsd acknowledging WAL writes before fsync (power cut)', async (t) => {
  const RUN_LIMIT_MS = 40_000;
  const seen: string[] = [];
  for (const seed of [2, 3, 4]) {
    const cluster = await Cluster.start('etsd', 3, { ETSD_FAILPOINTS: 'walAckBeforeFsync=error' }, [], clusterOptions('power-cut'));
    let timer: NodeJS.Timeout | undefined;
    try {
      const run = runOnce(cluster, { fault: 'power-cut', seed, ops: OPS, prefix: `/faults-ci/bug/wal-ack/${seed}/` });
      // Past the limit the cluster is closed: the run's next restart or wait on it throws.
      const limit = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), RUN_LIMIT_MS); });
      const r = await Promise.race([run, limit]);
      if (r === null) {
        await cluster.close();
        const why = await run.then(() => 'finished late', (e: unknown) => String(e).split('\n')[0]!);
        seen.push(`seed ${seed}: not finished within ${RUN_LIMIT_MS} ms (${why})`);
        continue;
      }
      t.diagnostic(`${summary(r)}; dropped: ${JSON.stringify(r.fault.reverted)}`);
      const lost = r.anomalies.find((a) => a.check === 'history');
      if (lost) { t.diagnostic(`e.g. ${lost.detail}`); return; }
      seen.push(`seed ${seed}: ${[...new Set(r.anomalies.map((a) => a.check))].join(', ') || 'no anomalies'}`);
    } catch (e) {
      seen.push(`seed ${seed}: the run did not finish: ${String(e).split('\n')[0]}`);
    } finally {
      clearTimeout(timer);
      await cluster.close();
    }
  }
  assert.fail(`the lost acknowledged writes went unnoticed: ${seen.join('; ')}`);
});
