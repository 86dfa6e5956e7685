// One fault per run, injected into a live cluster and healed before the run
// ends. Leader faults measure failover: ms from the fault until one of the
// other members reports itself leader (polled every 20 ms on /metrics).
//
// - kill-majority: kill -9 of the leader and a follower, then both restarted;
// - kill-all: kill -9 of every member, then all restarted (the page cache
//   survives: what was written and not synced is kept);
// - power-cut (etsd): right after a write was acknowledged, kill -9 of every
//   member at once, and what each had written and not fsync'd dropped from
//   its files (the power-cut shim, test/faults/powercut/, model in
//   revert.ts), then all restarted; twice (POWER_CUTS). Not for etcd: a Go
//   binary's raw syscalls bypass the LD_PRELOAD shim;
// - drop-leader-to-follower: the leader's raft messages to one follower lost
//   (one direction: the follower's still arrive), then healed;
// - snapshot-follower: a follower blackholed while filler writes push the
//   leader's log compaction past it (small --snapshot-count, clusterFlags()),
//   healed: it can only catch up from a raft snapshot, which must be seen;
// - replace-follower: member remove, data dir wiped, member add, started
//   with --initial-cluster-state existing;
// - disk-full-wal: the member whose --wal-dir is a small tmpfs gets it filled,
//   then 1 MB writes until the WAL needs space it cannot have and the member
//   exits; the tmpfs grown ("space freed"), the member restarted;
// - failpoint-crash (etsd): a follower restarted with `<point>=crash` armed
//   (failpoints are armed at process start) is brought to that point (made
//   leader, or made to need a snapshot, as the point requires) and crashes
//   there under the traffic; restarted disarmed.

import { isGrpcError, KvClient } from '../../integration/kv-client.js';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FailpointName } from '../../../src/common/failpoints.js';
import { ELECTION_MS, type Cluster, type ClusterKind, type ClusterOptions } from './cluster.js';

export const FAULTS = ['none', 'kill-leader', 'kill-follower', 'stop-leader', 'partition-leader',
  'kill-majority', 'kill-all', 'power-cut', 'drop-leader-to-follower', 'snapshot-follower', 'replace-follower', 'disk-full-wal', 'failpoint-crash'] as const;
export type FaultKind = (typeof FAULTS)[number];

/**
 * The failpoints on the member's commit, apply and snapshot paths that the crash cycle arms
 * (`crash` on their first hit past the cluster's start, see CRASH_HIT). Not here: the compaction
 * and lease points (the traffic neither compacts nor leases), confChangeBeforeApply (no
 * membership change in the traffic), and the deliberate bugs.
 */
export const CRASH_POINTS: FailpointName[] = [
  'walBeforeFsync', 'walAfterFsync', 'applyBeforeCommit', 'applyAfterCommit', 'raftBeforeLeaderSend',
  'snapshotBeforeSave', 'snapshotAfterSave', 'snapshotBeforeInstall', 'snapshotInstallAfterMarker', 'snapshotAfterInstall',
];
/** Points only the leader reaches (it makes the snapshot a follower needs, it sends first). */
const LEADER_POINTS = new Set<FailpointName>(['raftBeforeLeaderSend', 'snapshotBeforeSave', 'snapshotAfterSave']);
/** Points only a follower installing a snapshot reaches. */
const INSTALL_POINTS = new Set<FailpointName>(['snapshotBeforeInstall', 'snapshotInstallAfterMarker', 'snapshotAfterInstall']);
/** Hit that crashes (from the armed restart): a few into its catch-up and the traffic; the rest crash on their first hit. */
const CRASH_HIT: Partial<Record<FailpointName, number>> = { walBeforeFsync: 20, walAfterFsync: 20, applyBeforeCommit: 20, applyAfterCommit: 20, raftBeforeLeaderSend: 50 };
/** tmpfs size for the disk-full WAL: one 64 MiB segment (etsd and etcd preallocate that much) and a little. */
export const TMPFS_WAL_MB = 72;
const BIG_VALUE_BYTES = 7_000_000;

export interface FaultReport {
  kind: FaultKind;
  target?: string;
  /** ms from the fault to a new leader among the others (leader faults). */
  failoverMs?: number;
  /** ms the fault lasted (until restart / SIGCONT / heal began). */
  heldMs?: number;
  /** The members' log tails right after a failover slower than twice the election timeout (to see why). */
  slowLogs?: string;
  /** snapshot-follower, failpoint-crash: raft snapshot installs logged by the target during the fault. */
  snapshotsInstalled?: number;
  /** Filler writes made to move the cluster on while the target was away (not in the checked history). */
  fillerWrites?: number;
  /** disk-full-wal, failpoint-crash: the target exited by itself, and the last lines it logged. */
  exited?: boolean;
  exitLog?: string;
  /** drop-leader-to-follower: chunks of the leader's messages the proxy discarded. */
  discarded?: number;
  /** replace-follower: the member id before and after. */
  ids?: { oldId: string; newId: string };
  /** power-cut: per member, over every cut: changes undone, bytes cut off its files and given back their old contents, completed syncs seen. */
  reverted?: { member: string; undone: number; bytesCut: number; bytesRestored: number; syncs: number }[];
  /** power-cut: every cut came right after an acknowledged write (false: one waited ACK_WAIT_MS in vain). */
  cutAfterAck?: boolean;
}

/** Extra flags the fault kinds to be run need on every member (snapshots: a log compaction every 100 entries). */
export function clusterFlags(kind: ClusterKind, faults: readonly FaultKind[]): string[] {
  // disk-full-wal: big entries, so that the WAL gets through its preallocated segment in a few writes.
  if (faults.includes('disk-full-wal')) return ['--max-request-bytes', String(BIG_VALUE_BYTES + 1024 * 1024)];
  if (!faults.includes('snapshot-follower') && !faults.includes('failpoint-crash')) return [];
  // etcd 3.4 keeps a fixed 5000 entries behind a compaction (SnapshotCatchUpEntries has no flag there).
  return kind === 'etsd' ? ['--snapshot-count', '100', '--experimental-snapshot-catchup-entries', '20'] : ['--snapshot-count', '100'];
}

/** Cluster options a fault kind needs: the tmpfs WAL, the power-cut shim (etsd only). */
export function clusterOptions(fault: FaultKind, kind: ClusterKind = 'etsd'): ClusterOptions {
  if (fault === 'disk-full-wal') return { tmpfsWal: { member: 0, sizeMb: TMPFS_WAL_MB } };
  if (fault === 'power-cut' && kind === 'etsd') return { powerCut: true };
  return {};
}

/** Why a fault kind cannot be had on a target at all (not a matter of cluster size), or null. */
export function faultRefused(fault: FaultKind, kind: ClusterKind): string | null {
  if (fault === 'power-cut' && kind === 'etcd') return 'power-cut: etcd (Go) makes raw syscalls that the LD_PRELOAD shim cannot see; etsd only';
  return null;
}

/** Writes past the leader's log compaction: enough entries that a member away for all of them needs a snapshot. */
const fillerCount = (kind: ClusterKind): number => (kind === 'etsd' ? 300 : 5300);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FAILOVER_TIMEOUT_MS = 30_000;
/** How long a fault stays after failover (or after a follower kill), so traffic runs against the degraded cluster. */
const HOLD_MS = 1000;

export function faultApplies(kind: FaultKind, c: Cluster): boolean {
  if (kind === 'none') return true;
  if (kind === 'disk-full-wal') return c.tmpfsWalDir !== null;
  if (kind === 'power-cut') return c.kind === 'etsd' && c.options.powerCut === true;
  if (kind === 'failpoint-crash') return c.kind === 'etsd' && c.size >= 3;
  if (kind === 'snapshot-follower') return c.flags.includes('--snapshot-count') && c.size >= 3;
  if (c.size < 3) return kind === 'kill-leader' || kind === 'stop-leader';
  return true;
}

/** `count` puts on a filler key (outside every run's prefix) through whichever of `via` answers, `parallel` at a time. */
async function fill(c: Cluster, via: number[], count: number, parallel: number, valueBytes = 16, stop: () => boolean = () => false): Promise<number> {
  const kvs = via.map((i) => new KvClient(c.endpoint(i)));
  let next = 0;
  let done = 0;
  const value = Buffer.alloc(valueBytes, 'f');
  try {
    await Promise.all(Array.from({ length: parallel }, async (_, w) => {
      let k = w;
      while (next < count && !stop()) {
        next++;
        for (let tries = 0; ; tries++) {
          try { await kvs[k % kvs.length]!.put({ key: Buffer.from(`/faults-fill/${w}`), value }, 5000); done++; break; } catch (e) {
            if (!isGrpcError(e) || tries > 100) throw e;
            if (stop()) return;
            k++;
            await sleep(100);
          }
        }
      }
    }));
  } finally { for (const kv of kvs) kv.close(); }
  return done;
}

/** Waits until `cond` holds, polling; throws with `what` after timeoutMs. */
async function until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await sleep(50);
  }
}

/** Makes member `to` the leader (etcdctl move-leader through the current one). */
async function moveLeader(c: Cluster, to: number): Promise<void> {
  const leader = await c.leader(FAILOVER_TIMEOUT_MS);
  if (leader === to) return;
  const list = await c.etcdctl(leader, ['member', 'list']);
  const id = list.split('\n').find((l) => l.split(', ')[2] === c.name(to))?.split(', ')[0];
  if (!id) throw new Error(`${c.name(to)} not in the member list:\n${list}`);
  await c.etcdctl(leader, ['move-leader', id]);
  await c.leader(FAILOVER_TIMEOUT_MS, [to]);
}

/** Blackholes follower f until the cluster wrote past its compaction, heals, and waits for f to install a snapshot. */
async function lagIntoSnapshot(c: Cluster, f: number, leader: number, installsBefore: number, wait = true): Promise<{ fillerWrites: number; snapshotsInstalled: number }> {
  c.isolate(f, 'blackhole');
  const others = Array.from({ length: c.size }, (_, i) => i).filter((i) => i !== f);
  const fillerWrites = await fill(c, [leader, ...others.filter((i) => i !== leader)], fillerCount(c.kind), 16);
  c.heal();
  if (wait) await until(() => c.snapshotsInstalled(f) > installsBefore, 60_000, () => `${c.name(f)} to install a snapshot:\n${c.logTail(f)}`);
  return { fillerWrites, snapshotsInstalled: c.snapshotsInstalled(f) - installsBefore };
}

/** Fills the filesystem holding `dir` with a file (returns its path): every block the WAL has not preallocated. */
function fillFs(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) {
      try { writeSync(fd, chunk); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally { closeSync(fd); }
  return path;
}

async function newLeader(c: Cluster, old: number, t0: number): Promise<{ failoverMs: number; slowLogs?: string }> {
  const others = Array.from({ length: c.size }, (_, i) => i).filter((i) => i !== old);
  await c.leader(FAILOVER_TIMEOUT_MS, others, 20);
  const failoverMs = Date.now() - t0;
  return failoverMs > 2 * ELECTION_MS ? { failoverMs, slowLogs: c.logs() } : { failoverMs };
}

/** What a fault may need from the run that injects it. */
export interface InjectCues {
  /** Resolves when the run's traffic next has a write acknowledged. */
  nextWriteAck?: () => Promise<void>;
}
/** power-cut waits at most this long for an acknowledged write before it cuts anyway. */
const ACK_WAIT_MS = 5000;
/**
 * Cuts per power-cut fault, each after an acknowledged write. With walAckBeforeFsync one cut lost
 * an acknowledged write in 7 runs of 10 (seeds 10-19; two missed: a member that flushed between
 * the write and the cut, then won the election, kept it; one never finished). Two: 9 of 10.
 */
const POWER_CUTS = 2;

/** `watched`: the member the run's watcher is on (snapshot-follower lags that one when it is a follower). */
export async function inject(c: Cluster, kind: FaultKind, point?: FailpointName, watched = -1, cues: InjectCues = {}): Promise<FaultReport> {
  if (kind === 'none') return { kind };
  const leader = await c.leader(FAILOVER_TIMEOUT_MS);
  const single = c.size === 1;
  switch (kind) {
    case 'kill-leader': {
      const t0 = Date.now();
      await c.kill(leader);
      const f = single ? {} : await newLeader(c, leader, t0);
      await sleep(HOLD_MS);
      const heldMs = Date.now() - t0;
      await c.restart(leader);
      return { kind, target: c.name(leader), ...f, heldMs };
    }
    case 'kill-follower': {
      const f = (leader + 1) % c.size;
      const t0 = Date.now();
      await c.kill(f);
      await sleep(HOLD_MS * 2);
      const heldMs = Date.now() - t0;
      await c.restart(f);
      return { kind, target: c.name(f), heldMs };
    }
    case 'stop-leader': {
      const t0 = Date.now();
      c.signal(leader, 'SIGSTOP');
      const f = single ? {} : await newLeader(c, leader, t0);
      await sleep(single ? 2 * HOLD_MS : HOLD_MS);
      const heldMs = Date.now() - t0;
      c.signal(leader, 'SIGCONT');
      return { kind, target: c.name(leader), ...f, heldMs };
    }
    case 'partition-leader': {
      const t0 = Date.now();
      c.isolate(leader);
      const f = await newLeader(c, leader, t0);
      await sleep(HOLD_MS);
      const heldMs = Date.now() - t0;
      c.heal();
      return { kind, target: c.name(leader), ...f, heldMs };
    }
    case 'kill-majority': {
      const f = (leader + 1) % c.size;
      const t0 = Date.now();
      await Promise.all([c.kill(leader), c.kill(f)]);
      await sleep(HOLD_MS);
      const heldMs = Date.now() - t0;
      // Both at once: neither can answer a linearizable read before the other is back.
      await Promise.all([c.restart(leader), c.restart(f)]);
      return { kind, target: `${c.name(leader)}+${c.name(f)}`, heldMs };
    }
    case 'kill-all': {
      const all = Array.from({ length: c.size }, (_, i) => i);
      const t0 = Date.now();
      await Promise.all(all.map((i) => c.kill(i)));
      await sleep(HOLD_MS);
      const heldMs = Date.now() - t0;
      await Promise.all(all.map((i) => c.restart(i)));
      return { kind, target: 'all', heldMs };
    }
    case 'power-cut': {
      const all = Array.from({ length: c.size }, (_, i) => i);
      const reverted = all.map((i) => ({ member: c.name(i), undone: 0, bytesCut: 0, bytesRestored: 0, syncs: 0 }));
      let cutAfterAck = true;
      const t0 = Date.now();
      for (let cut = 0; cut < POWER_CUTS; cut++) {
        // Right after a write was acknowledged: a WAL that answers before it syncs
        // (walAckBeforeFsync) holds that write unsynced in every member then; a correct one has it.
        if (!(cues.nextWriteAck && await Promise.race([cues.nextWriteAck().then(() => true), sleep(ACK_WAIT_MS).then(() => false)]))) cutAfterAck = false;
        const reports = await c.powerCut(all);
        reports.forEach((r, i) => {
          const m = reverted[i]!;
          m.undone += r.undone; m.bytesCut += r.bytesCut; m.bytesRestored += r.bytesRestored; m.syncs += r.syncs;
        });
        await sleep(HOLD_MS);
        await Promise.all(all.map((i) => c.restart(i)));
      }
      return { kind, target: 'all', heldMs: Date.now() - t0, reverted, cutAfterAck };
    }
    case 'drop-leader-to-follower': {
      const f = (leader + 1) % c.size;
      const t0 = Date.now();
      c.drop(leader, f);
      await sleep(HOLD_MS * 2);
      const heldMs = Date.now() - t0;
      const discarded = c.proxy.stats.discarded[`${leader}>${f}`] ?? 0;
      c.heal();
      return { kind, target: `${c.name(leader)}>${c.name(f)}`, heldMs, discarded };
    }
    case 'snapshot-follower': {
      // The watcher's member (leadership moved off it first): its watch stream lives through the snapshot install.
      const t0 = Date.now();
      let lead = leader;
      if (watched === leader) { await moveLeader(c, (leader + 1) % c.size); lead = await c.leader(FAILOVER_TIMEOUT_MS); }
      const f = watched >= 0 && watched !== lead ? watched : (lead + 1) % c.size;
      const s = await lagIntoSnapshot(c, f, lead, c.snapshotsInstalled(f));
      return { kind, target: c.name(f), heldMs: Date.now() - t0, ...s };
    }
    case 'replace-follower': {
      const f = (leader + 1) % c.size;
      const t0 = Date.now();
      const ids = await c.replace(f, leader);
      return { kind, target: c.name(f), heldMs: Date.now() - t0, ids };
    }
    case 'disk-full-wal': {
      const i = c.options.tmpfsWal!.member;
      const dir = c.tmpfsWalDir!;
      const t0 = Date.now();
      fillFs(dir);
      // Big entries until the WAL needs a block the tmpfs has not got (at most two 64 MB segments' worth).
      const others = Array.from({ length: c.size }, (_, k) => k).filter((k) => k !== i);
      const fillerWrites = await fill(c, [leader, ...others], 24, 1, BIG_VALUE_BYTES, () => !c.isUp(i));
      const exited = !c.isUp(i);
      const exitLog = c.logTail(i, 60);
      const heldMs = Date.now() - t0;
      c.growTmpfs(4 * TMPFS_WAL_MB);
      if (!exited) await c.kill(i);
      // Its WAL holds big entries to replay and more to catch up on: give it longer on a loaded machine.
      await c.restart(i, undefined, 180_000);
      return { kind, target: c.name(i), heldMs, fillerWrites, exited, exitLog };
    }
    case 'failpoint-crash': {
      if (!point) throw new Error('failpoint-crash needs a failpoint');
      if (c.kind !== 'etsd') throw new Error('failpoint-crash arms etsd members only');
      const a = (leader + 1) % c.size;
      const t0 = Date.now();
      // Failpoints are armed at process start: a's restart arms it (hits count from there).
      await c.kill(a);
      const hit = CRASH_HIT[point];
      c.launch(a, { ETSD_FAILPOINTS: hit ? `${point}=@${hit} crash` : `${point}=crash` });
      const exit = c.exited(a);
      let s: { fillerWrites?: number; snapshotsInstalled?: number } = {};
      let down = false;
      if (LEADER_POINTS.has(point) || INSTALL_POINTS.has(point)) {
        // It may reach its point before it answers (a restart behind the compacted log needs a snapshot at once).
        try { await c.waitReady(a); } catch (e) {
          if (c.isUp(a)) throw e;
          down = true;
        }
      }
      if (!down && (LEADER_POINTS.has(point) || INSTALL_POINTS.has(point))) {
        if (LEADER_POINTS.has(point)) await moveLeader(c, a);
        if (INSTALL_POINTS.has(point) && (await c.leader(FAILOVER_TIMEOUT_MS)) === a) await moveLeader(c, (a + 1) % c.size);
        const now = await c.leader(FAILOVER_TIMEOUT_MS);
        if (point === 'snapshotBeforeSave' || point === 'snapshotAfterSave') s = await lagIntoSnapshot(c, (a + 1) % c.size, a, 0, false);
        if (INSTALL_POINTS.has(point)) s = await lagIntoSnapshot(c, a, now, 0, false);
      }
      // The traffic goes on meanwhile: the armed member reaches its point under load.
      const crashed = await Promise.race([exit.then(() => true), sleep(60_000).then(() => false)]);
      const exitLog = c.logTail(a, 10);
      const heldMs = Date.now() - t0;
      if (!crashed) await c.kill(a);
      await c.restart(a, {});
      return { kind, target: `${c.name(a)}@${point}`, heldMs, exited: crashed, exitLog, ...s };
    }
  }
}
