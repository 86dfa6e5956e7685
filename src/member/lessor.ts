/** etcd's largest lease TTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;
/** An expired lease whose revoke did not apply is proposed again after this long (etcd: 3 s). */
const REVOKE_RETRY_MS = 3000;

interface LeaseClock { ttl: number; expiry: number; revokeSent: number }

/**
 * The lease clock, on the main thread only: remaining time, keep-alive and
 * expiry. Which leases exist is decided by the log (grant/revoke applied by the
 * apply worker, reported here); nothing in the apply path reads a clock.
 * Only the leader's clock decides expiry (etcd's primary lessor). A follower's
 * clock is not the lease's: it sees only the keep-alives sent to it, not those
 * sent to the leader or the other followers, so on a follower a lease lives
 * until the log revokes it (etcd's demoted lessor: expiry "forever").
 */
export class Lessor {
  private leases = new Map<bigint, LeaseClock>();
  /** This member leads: its clock decides expiry (etcd's isPrimary). */
  private primary = false;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A lease known from the log: its clock starts (or restarts, after a restart) now, as etcd's promote does. */
  granted(id: bigint, ttl: number): void {
    this.leases.set(id, { ttl, expiry: this.now() + ttl * 1000, revokeSent: 0 });
  }

  /** This member became leader: every lease's clock restarts (etcd's lessor Promote). */
  promote(): void {
    this.primary = true;
    const now = this.now();
    for (const l of this.leases.values()) { l.expiry = now + l.ttl * 1000; l.revokeSent = 0; }
  }

  /** The state was replaced by a snapshot: exactly these leases exist, their clocks start now. */
  replaceAll(leases: { id: bigint; ttl: number }[]): void {
    this.leases.clear();
    for (const l of leases) this.granted(l.id, l.ttl);
  }

  /** This member no longer leads: its clock no longer decides expiry (etcd's lessor Demote). */
  demote(): void {
    this.primary = false;
  }

  revoked(id: bigint): void {
    this.leases.delete(id);
  }

  /**
   * Keep-alive: the new TTL, or null if the lease is unknown, or expired by
   * the leader's clock. A follower renews any lease the log still holds.
   */
  renew(id: bigint): number | null {
    const l = this.leases.get(id);
    if (!l || (this.primary && l.expiry <= this.now())) return null;
    l.expiry = this.now() + l.ttl * 1000;
    return l.ttl;
  }

  /** Seconds left (truncated, as etcd) and the granted TTL, or null if unknown. */
  remaining(id: bigint): { ttl: number; granted: number } | null {
    const l = this.leases.get(id);
    if (!l) return null;
    return { ttl: Math.trunc((l.expiry - this.now()) / 1000), granted: l.ttl };
  }

  /** All leases, soonest expiry first (etcd's Leases order). */
  list(): bigint[] {
    return [...this.leases].sort((a, b) => a[1].expiry - b[1].expiry).map(([id]) => id);
  }

  /** Expired leases to revoke now (at most `limit`), each at most once per retry interval. */
  takeExpired(limit: number): bigint[] {
    const now = this.now();
    const out: bigint[] = [];
    for (const [id, l] of this.leases) {
      if (out.length >= limit) break;
      if (l.expiry > now || now - l.revokeSent < REVOKE_RETRY_MS) continue;
      l.revokeSent = now;
      out.push(id);
    }
    return out;
  }
}

/**
 * etcd's request id generator (idutil): the low 16 bits of the member id,
 * then a millisecond timestamp and a counter; used for lease ids.
 */
export class IdGenerator {
  private prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number = Date.now()) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.suffix = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & ((1n << 48n) - 1n);
    return this.prefix | this.suffix;
  }
}
