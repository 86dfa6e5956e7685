// The shape of a recorded client history: one record per request with its
// invoke and return times (process.hrtime, ns since the recorder started) and
// its outcome. 'ok' carries the response; 'fail' is an error that means the
// request did not take effect; 'unknown' (timeout, lost connection, an error
// that may come after a proposal) may or may not have taken effect, so the
// checkers let an unknown write either apply or not, and drop unknown reads.
// Pure types: no I/O here, so the checkers and their unit tests stay pure.

export interface KvSnap { value: string; modRevision: number }

export type CasCompare = { target: 'mod'; modRevision: number } | { target: 'value'; value: string };

export type KvInput =
  | { type: 'put'; key: string; value: string; prevKv: boolean }
  | { type: 'get'; key: string; serializable: boolean }
  | { type: 'delete'; key: string; prevKv: boolean }
  /** Txn: if compare then put(key, value) else get(key). */
  | { type: 'cas'; key: string; cmp: CasCompare; value: string };

export type KvOutput =
  /** prevKv is undefined when it was not asked for, null when the key was absent. */
  | { type: 'put'; revision: number; prevKv?: KvSnap | null }
  | { type: 'get'; revision: number; kv: KvSnap | null }
  | { type: 'delete'; revision: number; deleted: number; prevKv?: KvSnap | null }
  /** kv is the else-branch get (null when absent or when the txn succeeded). */
  | { type: 'cas'; revision: number; succeeded: boolean; kv: KvSnap | null };

export type Outcome = 'ok' | 'fail' | 'unknown';

export interface KvOp {
  id: number;
  client: number;
  /** The member the client talked to, with its incarnation (name#n, n bumped on each restart). */
  member: string;
  input: KvInput;
  /** ns since the recorder's origin. */
  call: number;
  /** ns since the recorder's origin; Infinity for unknown outcomes (the effect may land any time later). */
  ret: number;
  outcome: Outcome;
  output?: KvOutput;
  error?: string;
}

/** A write changes the store (and takes a revision) when it is ok and did something. */
export function isEffectiveWrite(op: KvOp): boolean {
  const o = op.output;
  if (op.outcome !== 'ok' || !o) return false;
  if (o.type === 'put') return true;
  if (o.type === 'delete') return o.deleted > 0;
  if (o.type === 'cas') return o.succeeded;
  return false;
}

export function isWriteInput(i: KvInput): boolean {
  return i.type !== 'get';
}

// ---- watch ----

export interface WatchEventRec {
  type: 'put' | 'delete';
  key: string;
  value: string;
  modRevision: number;
  prevKv: KvSnap | null;
}

export interface WatchResponseRec {
  /** Which watch stream (0, 1, ... one per (re)connection). */
  stream: number;
  /** Header revision of the response. */
  revision: number;
  events: WatchEventRec[];
}

export interface WatchStreamRec {
  stream: number;
  member: string;
  startRevision: number;
  /** Why it ended: 'cut' (we cut it to test resumption), an error text, or 'closed'. */
  end: string;
}

export interface WatchHistory {
  /** The first revision the watch asked for; the prefix is fresh, so nothing before it is in range. */
  startRevision: number;
  streams: WatchStreamRec[];
  responses: WatchResponseRec[];
}
