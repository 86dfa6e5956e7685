import type { KeyValue, RangeRequest } from '../../proto/kv-types.js';
import { Errors } from '../../common/errors.js';
import { rangeKeys, type DbReader, type LatestSource } from './reader.js';

export interface RangeOutcome { kvs: KeyValue[]; more: boolean; count: number; revision: number }

/**
 * etcd's applyRange: revision checks, limit + 1 to learn `more`, the
 * mod/create revision filters, sorting, and keys_only. `curRev` is the
 * revision of the view (the response header revision).
 */
export function executeRange(
  src: LatestSource, hist: DbReader, r: RangeRequest, curRev: number, compactRev: number,
): RangeOutcome {
  let rev = r.revision;
  if (rev > curRev) throw Errors.futureRev();
  if (rev <= 0) rev = curRev;
  if (rev < compactRev) throw Errors.compacted();

  const sortOrder = r.sortOrder;
  const filtered = r.minModRevision !== 0 || r.maxModRevision !== 0 || r.minCreateRevision !== 0 || r.maxCreateRevision !== 0;
  let limit = sortOrder !== 0 || filtered ? 0 : r.limit;
  if (limit > 0) limit += 1;
  const res = rangeKeys(src, hist, r.key, r.rangeEnd, rev, curRev, limit, r.countOnly);
  let kvs = res.kvs;
  if (filtered) {
    kvs = kvs.filter((kv) =>
      !(r.maxModRevision !== 0 && kv.modRevision > r.maxModRevision) &&
      !(r.minModRevision !== 0 && kv.modRevision < r.minModRevision) &&
      !(r.maxCreateRevision !== 0 && kv.createRevision > r.maxCreateRevision) &&
      !(r.minCreateRevision !== 0 && kv.createRevision < r.minCreateRevision));
  }
  // etcd sorts ASCEND when a non-key target is given without an order.
  const order = r.sortTarget !== 0 && sortOrder === 0 ? 1 : sortOrder;
  if (order !== 0) {
    const cmp = comparator(r.sortTarget);
    kvs.sort(order === 2 ? (a, b) => cmp(b, a) : cmp);
  }
  let more = false;
  if (r.limit > 0 && kvs.length > r.limit) {
    kvs = kvs.slice(0, r.limit);
    more = true;
  }
  if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: EMPTY }));
  return { kvs, more, count: res.count, revision: curRev };
}

const EMPTY = Buffer.alloc(0);

function comparator(target: number): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 1: return (a, b) => a.version - b.version;
    case 2: return (a, b) => a.createRevision - b.createRevision;
    case 3: return (a, b) => a.modRevision - b.modRevision;
    case 4: return (a, b) => Buffer.compare(a.value, b.value);
    default: return (a, b) => Buffer.compare(a.key, b.key);
  }
}

/** etcd rejects sort enums it does not know. */
export function checkSortOptions(r: RangeRequest): void {
  if (r.sortOrder < 0 || r.sortOrder > 2 || r.sortTarget < 0 || r.sortTarget > 4) throw Errors.invalidSortOption();
}
