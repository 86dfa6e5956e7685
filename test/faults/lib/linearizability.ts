// Linearizability checking with the Wing-Gong algorithm as improved by Lowe
// (memoize every (set of linearized operations, model state) already tried),
// the way porcupine does it: a history is a list of call and return events in
// time order; an operation may be linearized when its call comes before any
// pending return in the list; reaching a return whose operation is not yet
// linearized means backtrack. Unknown-outcome operations return at Infinity.
// The model may be nondeterministic: step() gives every possible next state
// (none: the output is impossible in that state). Histories are partitioned
// by the caller (per key) and each part checked on its own.

export interface Model<S, I, O> {
  init: S;
  /** Possible next states; output undefined means the outcome is unknown. */
  step(state: S, input: I, output: O | undefined): S[];
  /** A string identifying the state, for memoization. */
  key(state: S): string;
}

export interface Operation<I, O> {
  id: number;
  call: number;
  /** Infinity when the outcome is unknown. */
  ret: number;
  input: I;
  output: O | undefined;
}

export interface LinResult {
  ok: boolean;
  /** On failure: the longest linearized prefix found (op ids, in order) and the ops it could not place next. */
  longestPrefix?: number[];
  stuckAt?: number[];
  /** Search steps taken (for reporting). */
  steps: number;
  /** The step bound ran out: no verdict (too many unknown outcomes), not a proven violation. */
  exhausted?: boolean;
}

interface Node<I, O> {
  op: Operation<I, O>;
  index: number;
  isCall: boolean;
  match: Node<I, O> | null;
  prev: Node<I, O> | null;
  next: Node<I, O> | null;
}

/** A bound on search steps: a pathological part is reported, not searched forever. */
export const DEFAULT_MAX_STEPS = 5_000_000;

export function checkLinearizable<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps = DEFAULT_MAX_STEPS): LinResult {
  const n = ops.length;
  if (n === 0) return { ok: true, steps: 0 };
  type N = Node<I, O>;
  const events: { t: number; isCall: boolean; i: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ t: op.call, isCall: true, i });
    events.push({ t: op.ret, isCall: false, i });
  });
  // At equal times calls go first: the two operations count as concurrent (the permissive choice).
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: N = { op: ops[0]!, index: -1, isCall: false, match: null, prev: null, next: null };
  const calls: (N | undefined)[] = new Array(n);
  let tail = head;
  for (const e of events) {
    const node: N = { op: ops[e.i]!, index: e.i, isCall: e.isCall, match: null, prev: tail, next: null };
    if (e.isCall) calls[e.i] = node;
    else { node.match = null; calls[e.i]!.match = node; }
    tail.next = node;
    tail = node;
  }
  const lift = (c: N): void => {
    c.prev!.next = c.next; if (c.next) c.next.prev = c.prev;
    const r = c.match!;
    r.prev!.next = r.next; if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: N): void => {
    const r = c.match!;
    r.prev!.next = r; if (r.next) r.next.prev = r;
    c.prev!.next = c; if (c.next) c.next.prev = c;
  };

  const bits = new Uint32Array((n + 31) >>> 5);
  const bitsKey = (): string => { let s = ''; for (let w = 0; w < bits.length; w++) s += bits[w]!.toString(36) + ','; return s; };
  const cache = new Set<string>();
  /** Tries to record (bits ∪ {i}, s); false if that pair was tried before. */
  const fresh = (i: number, s: S): boolean => {
    bits[i >>> 5]! |= 1 << (i & 31);
    const k = bitsKey() + '|' + model.key(s);
    bits[i >>> 5]! &= ~(1 << (i & 31));
    if (cache.has(k)) return false;
    cache.add(k);
    return true;
  };
  interface Frame { node: N; prev: S; rest: S[] }
  const stack: Frame[] = [];
  let state = model.init;
  let entry: N | null = head.next;
  let steps = 0;
  let best: number[] = [];
  let bestStuck: number[] = [];

  const push = (node: N, prev: S, candidates: S[]): boolean => {
    while (candidates.length > 0) {
      const s = candidates.shift()!;
      if (!fresh(node.index, s)) continue;
      stack.push({ node, prev, rest: candidates });
      bits[node.index >>> 5]! |= 1 << (node.index & 31);
      lift(node);
      state = s;
      return true;
    }
    return false;
  };

  while (head.next !== null) {
    if (++steps > maxSteps) return { ok: false, exhausted: true, steps, longestPrefix: best, stuckAt: bestStuck };
    const e = entry!;
    if (e.isCall) {
      if (push(e, state, model.step(state, e.op.input, e.op.output))) { entry = head.next; continue; }
      entry = e.next;
      continue;
    }
    // A return whose op is not linearized: everything linearizable before it was tried; backtrack.
    if (stack.length >= best.length) {
      best = stack.map((f) => f.node.op.id);
      bestStuck = [];
      for (let x: N | null = head.next; x && x !== e.next; x = x.next) if (x.isCall) bestStuck.push(x.op.id);
    }
    for (;;) {
      const top = stack.pop();
      if (!top) return { ok: false, steps, longestPrefix: best, stuckAt: bestStuck };
      bits[top.node.index >>> 5]! &= ~(1 << (top.node.index & 31));
      unlift(top.node);
      state = top.prev;
      if (push(top.node, top.prev, top.rest)) { entry = head.next; break; }
      entry = top.node.next;
      break;
    }
  }
  return { ok: true, steps };
}
