// The cluster's alarms (etcd's v3alarm.AlarmStore): which member raised which
// alarm. Changed only by applied Alarm entries, stored with the state (one
// meta record, so a restart or a snapshot brings them back).

import type { RocksLevel } from '@nxtedition/rocksdb';
import { field, isArray, packRecord, toBigInt, unpackRecord } from '../../common/records.js';
import { metaKey } from './keys.js';

/** etcdserverpb.AlarmType. */
export const enum AlarmType { NONE = 0, NOSPACE = 1, CORRUPT = 2 }

export interface AlarmMember { memberId: bigint; alarm: AlarmType }

export const META_ALARMS = metaKey('alarms');

export class AlarmStore {
  private readonly alarms: AlarmMember[];

  constructor(alarms: AlarmMember[] = []) { this.alarms = [...alarms]; }

  static load(db: RocksLevel): AlarmStore {
    const [raw] = db._getManySync([META_ALARMS], { valueEncoding: 'buffer' });
    if (!raw) return new AlarmStore();
    const v = unpackRecord(raw).value;
    return new AlarmStore(field(v, 'alarms', isArray).map((a) => {
      const pair = a as unknown[];
      return { memberId: toBigInt(pair[0], 'alarm member'), alarm: Number(pair[1]) as AlarmType };
    }));
  }

  toBytes(): Buffer {
    return packRecord({ alarms: this.alarms.map((a) => [a.memberId, a.alarm]) });
  }

  /** Alarms of one type, or all for NONE; in member id order (etcd's map order is random). */
  get(type: AlarmType): AlarmMember[] {
    return this.alarms.filter((a) => type === AlarmType.NONE || a.alarm === type)
      .sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : a.alarm - b.alarm));
  }

  /** Asked twice per applied write: a loop, not some() with a closure. */
  has(type: AlarmType): boolean {
    for (let i = 0; i < this.alarms.length; i++) if (this.alarms[i]!.alarm === type) return true;
    return false;
  }

  /** Bits for Shared.Alarms: 1 << type of every raised alarm. */
  get bits(): number { let b = 0; for (const a of this.alarms) b |= 1 << a.alarm; return b; }

  /** Raises it (again: the existing one is returned, as etcd's Activate does). */
  activate(memberId: bigint, alarm: AlarmType): { member: AlarmMember; changed: boolean } {
    const found = this.alarms.find((a) => a.memberId === memberId && a.alarm === alarm);
    if (found) return { member: found, changed: false };
    const m = { memberId, alarm };
    this.alarms.push(m);
    return { member: m, changed: true };
  }

  /** Clears it; null if it was not raised. */
  deactivate(memberId: bigint, alarm: AlarmType): AlarmMember | null {
    const i = this.alarms.findIndex((a) => a.memberId === memberId && a.alarm === alarm);
    if (i < 0) return null;
    return this.alarms.splice(i, 1)[0]!;
  }
}
