// One fault per run, injected into a live cluster and healed before the run
// ends. Leader faults measure failover: ms from the fault until one of the
// other members reports itself leader (polled every 20 ms on /metrics).

import { ELECTION_MS, type Cluster } from './cluster.js';

export const FAULTS = ['none', 'kill-leader', 'kill-follower', 'stop-leader', 'partition-leader'] as const;
export type FaultKind = (typeof FAULTS)[number];

export interface FaultReport {
  kind: FaultKind;
  target?: string;
  /** ms from the fault to a new leader among the others (leader faults). */
  failoverMs?: number;
  /** ms the fault lasted (until restart / SIGCONT / heal began). */
  heldMs?: number;
  /** The members' log tails right after a failover slower than twice the election timeout (to see why). */
  slowLogs?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FAILOVER_TIMEOUT_MS = 30_000;
/** How long a fault stays after failover (or after a follower kill), so traffic runs against the degraded cluster. */
const HOLD_MS = 1000;

export function faultApplies(kind: FaultKind, c: Cluster): boolean {
  if (kind === 'none') return true;
  if (c.size < 3) return kind === 'kill-leader' || kind === 'stop-leader';
  return true;
}

async function newLeader(c: Cluster, old: number, t0: number): Promise<{ failoverMs: number; slowLogs?: string }> {
  const others = Array.from({ length: c.size }, (_, i) => i).filter((i) => i !== old);
  await c.leader(FAILOVER_TIMEOUT_MS, others, 20);
  const failoverMs = Date.now() - t0;
  return failoverMs > 2 * ELECTION_MS ? { failoverMs, slowLogs: c.logs() } : { failoverMs };
}

export async function inject(c: Cluster, kind: FaultKind): Promise<FaultReport> {
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
  }
}
