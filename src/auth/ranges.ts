// A user's key permissions, merged over all of their roles, and etcd 3.4's
// two checks on them (auth/range_perm_cache.go over pkg/adt's interval tree):
//
// - a single key (no range end) is permitted when any permitted interval
//   holds it;
// - a range is permitted when the permitted intervals that overlap it,
//   taken in order of their start, join with no gap and cover it whole.
//
// Keys compare "affinely": an empty key is greater than every other key, so
// a range end of "\0" (stored as empty) reaches to the end of the keyspace.
// A single-key permission is the interval [key, key + "\0").
//
// Intervals are kept sorted by start (insertion order among equal starts, as
// the tree's in-order walk gives them); the check walks them once, which for
// the handful of permissions a user has is cheaper than a tree.

import type { Permission, Role, User } from './types.js';
import { PermType } from './types.js';

const EMPTY = Buffer.alloc(0);

/** adt.BytesAffineComparable.Compare: empty is +infinity. */
export function affineCompare(a: Buffer, b: Buffer): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return Buffer.compare(a, b);
}

export interface Interval { begin: Buffer; end: Buffer }

/** adt.Interval.Compare: -1 when a lies wholly left of b, 1 when wholly right, 0 when they overlap. */
export function intervalCompare(a: Interval, b: Interval): number {
  if (affineCompare(a.begin, b.begin) < 0 && affineCompare(a.end, b.begin) <= 0) return -1;
  if (affineCompare(a.begin, b.end) >= 0) return 1;
  return 0;
}

export function pointInterval(key: Buffer): Interval {
  return { begin: key, end: Buffer.concat([key, Buffer.from([0])]) };
}

/** "\0" as a range end means "to the end": the affine infinity. */
function normaliseEnd(rangeEnd: Buffer): Buffer {
  return rangeEnd.length === 1 && rangeEnd[0] === 0 ? EMPTY : rangeEnd;
}

/** The interval a stored permission grants (getMergedPerms). */
export function permInterval(p: Permission): Interval {
  if (p.rangeEnd.length === 0) return pointInterval(p.key);
  return { begin: p.key, end: normaliseEnd(p.rangeEnd) };
}

/** One kind of permission (read or write) of one user, sorted by start. */
export class IntervalSet {
  private readonly ivs: Interval[] = [];

  insert(iv: Interval): void {
    // After every interval with a start <= this one's: the tree sends equal starts right.
    let lo = 0;
    let hi = this.ivs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (affineCompare(iv.begin, this.ivs[mid]!.begin) < 0) hi = mid;
      else lo = mid + 1;
    }
    this.ivs.splice(lo, 0, iv);
  }

  get size(): number { return this.ivs.length; }

  /** adt.IntervalTree.Intersects. */
  intersects(iv: Interval): boolean {
    for (const s of this.ivs) if (intervalCompare(iv, s) === 0) return true;
    return false;
  }

  /** adt.IntervalTree.Contains: the overlapping intervals, in start order, cover iv with no gap. */
  contains(iv: Interval): boolean {
    let minBegin: Buffer | undefined;
    let maxEnd: Buffer = EMPTY;
    for (const s of this.ivs) {
      if (intervalCompare(iv, s) !== 0) continue;
      if (minBegin === undefined) {
        minBegin = s.begin;
        maxEnd = s.end;
        continue;
      }
      if (affineCompare(maxEnd, s.begin) < 0) return false;
      if (affineCompare(s.end, maxEnd) > 0) maxEnd = s.end;
    }
    return minBegin !== undefined && affineCompare(maxEnd, iv.end) >= 0 && affineCompare(minBegin, iv.begin) <= 0;
  }
}

/** A user's merged read and write permissions (unifiedRangePermissions). */
export class UserPerms {
  readonly read = new IntervalSet();
  readonly write = new IntervalSet();

  /** getMergedPerms: every permission of every role the user has; roles that do not exist add nothing. */
  static of(user: User, roleOf: (name: string) => Role | undefined): UserPerms {
    const up = new UserPerms();
    for (const name of user.roles) {
      const role = roleOf(name);
      if (role === undefined) continue;
      for (const p of role.perms) {
        const iv = permInterval(p);
        if (p.permType === PermType.READ || p.permType === PermType.READWRITE) up.read.insert(iv);
        if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) up.write.insert(iv);
      }
    }
    return up;
  }

  /** isRangeOpPermitted: a single key when rangeEnd is empty, else the range (with "\0" as "to the end"). */
  permits(kind: 'read' | 'write', key: Buffer, rangeEnd: Buffer): boolean {
    const set = kind === 'read' ? this.read : this.write;
    if (rangeEnd.length === 0) return set.intersects(pointInterval(key));
    return set.contains({ begin: key, end: normaliseEnd(rangeEnd) });
  }
}
