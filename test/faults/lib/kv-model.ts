// etcd's KV semantics for one key, as a nondeterministic model for the
// linearizability checker. State: the current value (null when absent) and
// `rev`, the mod revision of that value, or the revision of the delete that
// removed it (0 at the start; null when not known: an unknown-outcome write
// whose revision no one observed). Values are unique per write, so a revision
// learned anywhere (a read, a prev_kv, a watch event) is filled in for
// unknown writes beforehand (see check-kv.ts).
//
// Beyond values, the model holds revisions to account: a write's revision is
// above the key's last one, a read returns the value's exact mod revision
// and a header revision not below it.

import type { KvInput, KvOutput, KvSnap } from './history.js';
import type { Model } from './linearizability.js';

export interface KeyState { v: string | null; rev: number | null }

export interface KvStepInput { input: KvInput; /** mod revision learned for this op's written value, if any */ learnedRev: number | null }

const snapOk = (s: KeyState, kv: KvSnap | null | undefined): boolean => {
  if (kv === undefined) return true; // not asked for
  if (s.v === null) return kv === null;
  return kv !== null && kv.value === s.v && (s.rev === null || kv.modRevision === s.rev);
};

/** The revision a new write at `r` must exceed. */
const above = (s: KeyState, r: number): boolean => s.rev === null || r > s.rev;
/** A header revision seen by a read of this state. */
const notBelow = (s: KeyState, r: number): boolean => s.rev === null || r >= s.rev;

function casHolds(s: KeyState, input: Extract<KvInput, { type: 'cas' }>): boolean {
  if (input.cmp.target === 'value') return s.v !== null && s.v === input.cmp.value; // etcd: a value compare on a missing key fails
  const mod = s.v === null ? 0 : s.rev;
  return mod !== null && mod === input.cmp.modRevision;
}

function applied(s: KeyState, x: KvStepInput): KeyState | null {
  const i = x.input;
  if (i.type === 'put') return { v: i.value, rev: x.learnedRev };
  if (i.type === 'delete') return s.v === null ? s : { v: null, rev: null };
  if (i.type === 'cas') return casHolds(s, i) ? { v: i.value, rev: x.learnedRev } : s;
  return null;
}

export const kvModel: Model<KeyState, KvStepInput, KvOutput> = {
  init: { v: null, rev: 0 },
  key: (s) => `${s.v === null ? '-' : 'v' + s.v}@${s.rev ?? '?'}`,
  step(s, x, out) {
    const i = x.input;
    if (out === undefined) {
      // Unknown outcome: a read does nothing; a write either took effect or not.
      const a = applied(s, x);
      return a === null || a === s ? [s] : [a, s];
    }
    switch (i.type) {
      case 'get': {
        if (out.type !== 'get') return [];
        return snapOk(s, out.kv) && notBelow(s, out.revision) ? [s] : [];
      }
      case 'put': {
        if (out.type !== 'put') return [];
        return snapOk(s, out.prevKv) && above(s, out.revision) ? [{ v: i.value, rev: out.revision }] : [];
      }
      case 'delete': {
        if (out.type !== 'delete') return [];
        if (!snapOk(s, out.prevKv)) return [];
        if (s.v === null) return out.deleted === 0 && notBelow(s, out.revision) ? [s] : [];
        return out.deleted === 1 && above(s, out.revision) ? [{ v: null, rev: out.revision }] : [];
      }
      case 'cas': {
        if (out.type !== 'cas') return [];
        if (out.succeeded !== casHolds(s, i)) return [];
        if (out.succeeded) return above(s, out.revision) ? [{ v: i.value, rev: out.revision }] : [];
        return snapOk(s, out.kv) && notBelow(s, out.revision) ? [s] : [];
      }
    }
  },
};
