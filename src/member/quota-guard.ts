// etcd's space quota on the way in (etcdserver/quota.go, quotaKVServer): a
// Put, Txn or LeaseGrant that would take the store past --quota-backend-bytes
// is refused with "database space exceeded" before it is proposed, and this
// member raises the NOSPACE alarm through the log. The apply worker checks
// again when applying (storage/mvcc/quota.ts); while NOSPACE is raised it
// refuses what adds data (etcd's capped applier) until `etcdctl alarm disarm`.
import { EtcdError, Errors } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { decodePutRequest, decodeTxnRequest } from '../proto/kv-codec.js';
import { AlarmAction, encodeAlarmRequest } from '../proto/alarm-codec.js';
import { AlarmType } from '../storage/mvcc/alarms.js';
import { LEASE_OVERHEAD, available, costPut, costTxn, costUpperBound } from '../storage/mvcc/quota.js';
import { EntryKind } from '../workers/protocol/entry.js';
import { Shared, loadShared } from '../workers/protocol/shared-state.js';

const NO_SPACE = Errors.noSpace().message;

/** The error the quota applier answers for a write it applied past the quota. */
export function isNoSpace(err: unknown): boolean {
  return err instanceof EtcdError && err.message === NO_SPACE;
}

export class QuotaGuard {
  private raising = false;

  constructor(
    private readonly state: BigInt64Array,
    private readonly quota: number,
    private readonly memberId: bigint,
    private readonly propose: (kind: EntryKind, request: Buffer) => Promise<Buffer>,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean { return this.quota !== Infinity; }

  /** Live RocksDB size the quota counts (published by the apply worker). */
  get dbSize(): number { return loadShared(this.state, Shared.DbSize); }

  /** Raised alarm types, from the apply worker's bits. */
  alarms(): AlarmType[] {
    const bits = loadShared(this.state, Shared.Alarms);
    return [AlarmType.NOSPACE, AlarmType.CORRUPT].filter((t) => (bits & (1 << t)) !== 0);
  }

  /**
   * A write waiting here was answered with `err`: "database space exceeded"
   * from the apply worker's quota check raises the alarm, as etcd's apply does.
   * (Told by the result router rather than by a catch on every write's promise.)
   */
  answeredWith(err: EtcdError): void {
    if (this.quota !== Infinity && isNoSpace(err)) this.raise();
  }

  /** etcd's quotaKVServer check: null when the write may be proposed. */
  check(kind: EntryKind, request: Buffer): EtcdError | null {
    if (this.quota === Infinity) return null;
    if (kind !== EntryKind.Put && kind !== EntryKind.Txn && kind !== EntryKind.LeaseGrant) return null;
    const size = this.dbSize;
    // Decode only near the quota: the bound from the encoded length decides most writes.
    if (available(size, costUpperBound(request.length), this.quota)) return null;
    const cost = kind === EntryKind.Put ? costPut(decodePutRequest(request))
      : kind === EntryKind.Txn ? costTxn(decodeTxnRequest(request)) : LEASE_OVERHEAD;
    if (available(size, cost, this.quota)) return null;
    this.raise();
    return Errors.noSpace();
  }

  /** A write of ours was applied past the quota (etcd's quota applier answers so): raise NOSPACE, as etcd's apply does. */
  raise(): void {
    if (this.raising || this.alarms().includes(AlarmType.NOSPACE)) return;
    this.raising = true;
    this.log.warn({ 'quota-size': this.quota, 'db-size': this.dbSize }, 'raising NOSPACE alarm: database space exceeded');
    this.propose(EntryKind.Alarm, encodeAlarmRequest({ action: AlarmAction.ACTIVATE, memberId: this.memberId, alarm: AlarmType.NOSPACE }))
      .then(() => { this.raising = false; }, (err: unknown) => {
        this.raising = false;
        this.log.warn({ err }, 'raising the NOSPACE alarm failed; the next refused write tries again');
      });
  }
}
