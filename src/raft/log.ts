// The raft log held in memory (etcd-io/raft's raftLog, without its storage
// split): the base (the last compacted entry and the membership at it, as a
// snapshot's metadata names them) and the entries after it, contiguous, with
// the membership after each applied conf change above the base. Term lookups and the conflict searches
// live here; what the node does about a conflict (commit checks, durability)
// stays in node.ts.
import type { ConfState, Entry, SnapshotMeta } from './types.js';

export class RaftLog {
  private ents: Entry[];
  private baseIndex: number;
  private baseTerm: number;
  private baseConf: ConfState;
  /** Membership after each applied conf change still above the base: conf at index. */
  private confHistory: { index: number; conf: ConfState }[] = [];
  /** Sum of the held entries' data lengths (what the log costs in memory, roughly). */
  private dataBytes = 0;

  constructor(base: SnapshotMeta, entries: Entry[]) {
    this.baseIndex = base.index;
    this.baseTerm = base.term;
    this.baseConf = copyConf(base.conf);
    this.ents = entries.filter((e) => e.index > base.index);
    for (let i = 0; i < this.ents.length; i++) {
      if (this.ents[i]!.index !== base.index + 1 + i) throw new Error('entries are not contiguous after the log base');
    }
    for (const e of this.ents) this.dataBytes += e.data.length;
  }

  /** Bytes of entry data held. */
  get bytes(): number { return this.dataBytes; }

  /**
   * The highest index the log can be compacted to while the entries after it hold at
   * least `keep` bytes (or all of them, if they hold fewer): the base when nothing can go.
   */
  indexKeepingBytes(keep: number): number {
    let held = 0;
    for (let i = this.ents.length - 1; i >= 0; i--) {
      held += this.ents[i]!.data.length;
      if (held >= keep) return this.ents[i]!.index - 1;
    }
    return this.baseIndex;
  }

  /** The last compacted entry (index 0, term 0 for a log that was never compacted). */
  get base(): { index: number; term: number } { return { index: this.baseIndex, term: this.baseTerm }; }

  get baseIdx(): number { return this.baseIndex; }

  /** The base with its membership: what MsgSnap carries to a follower behind it. */
  snapshotMeta(): SnapshotMeta {
    return { index: this.baseIndex, term: this.baseTerm, conf: copyConf(this.baseConf) };
  }

  /** A conf change applied at index made the membership conf. */
  noteConf(index: number, conf: ConfState): void {
    this.confHistory.push({ index, conf: copyConf(conf) });
  }

  firstIndex(): number { return this.baseIndex + 1; }

  lastIndex(): number {
    return this.ents.length > 0 ? this.ents[this.ents.length - 1]!.index : this.baseIndex;
  }

  lastTerm(): number {
    return this.ents.length > 0 ? this.ents[this.ents.length - 1]!.term : this.baseTerm;
  }

  /** Term of the entry at index; undefined if compacted away or beyond the log. */
  termAt(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return undefined;
    return this.ents[index - this.baseIndex - 1]!.term;
  }

  /** The entry at index (which must be held: base < index <= last). */
  at(index: number): Entry {
    const e = this.ents[index - this.baseIndex - 1];
    if (!e) throw new Error(`raft: entry ${index} is not in the log (${this.baseIndex}, ${this.lastIndex()}]`);
    return e;
  }

  /** Entries in [lo, hi] (clamped to the log held). */
  slice(lo: number, hi: number): Entry[] {
    const a = Math.max(lo, this.baseIndex + 1) - this.baseIndex - 1;
    const b = Math.min(hi, this.lastIndex()) - this.baseIndex;
    return a < b ? this.ents.slice(a, b) : [];
  }

  /** Whether a candidate's log (last index, last term) is at least as up to date as ours (raft 5.4.1). */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /** Appends one entry right after the last. */
  push(e: Entry): void {
    if (e.index !== this.lastIndex() + 1) throw new Error(`raft: gap appending ${e.index} after ${this.lastIndex()}`);
    this.ents.push(e);
    this.dataBytes += e.data.length;
  }

  /** Drops the entries from `index` on (a conflicting suffix being replaced). */
  truncateFrom(index: number): void {
    if (index <= this.baseIndex) throw new Error(`raft: truncating at ${index}, at or below the base ${this.baseIndex}`);
    const keep = Math.max(0, index - this.baseIndex - 1);
    for (let i = keep; i < this.ents.length; i++) this.dataBytes -= this.ents[i]!.data.length;
    this.ents.length = keep;
  }

  /** First index in ents whose term differs from ours (or that we lack); 0 if all match. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) if (this.termAt(e.index) !== e.term) return e.index;
    return 0;
  }

  /** The largest index <= index whose term is <= term (where the logs may agree); term 0 if unknown. */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= this.baseIndex; i--) {
      const t = this.termAt(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: Math.max(this.baseIndex, 0), term: 0 };
  }

  /** Entries up to index are dropped; the base becomes (index, its term). */
  compactTo(index: number): void {
    if (index <= this.baseIndex) return;
    const term = this.termAt(index);
    if (term === undefined) throw new Error(`raft: compacting to ${index}, beyond the last index ${this.lastIndex()}`);
    let conf = this.baseConf;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    const drop = index - this.baseIndex;
    for (let i = 0; i < drop; i++) this.dataBytes -= this.ents[i]!.data.length;
    this.ents = this.ents.slice(drop);
    this.baseIndex = index;
    this.baseTerm = term;
    this.baseConf = conf;
    this.confHistory = this.confHistory.filter((h) => h.index > index);
  }

  /** Everything is replaced by a snapshot's base. */
  restore(s: SnapshotMeta): void {
    this.ents = [];
    this.dataBytes = 0;
    this.baseIndex = s.index;
    this.baseTerm = s.term;
    this.baseConf = copyConf(s.conf);
    this.confHistory = [];
  }
}

function copyConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}
