// Named failpoints: places in the member's own code paths where a test can
// make etsd crash, stall or fail, to prove what survives. Armed only by the
// environment variable ETSD_FAILPOINTS (worker threads see the same), e.g.
//
//   ETSD_FAILPOINTS='walAfterFsync=3*crash;applyBeforeCommit=sleep(200)'
//
// Actions: crash (SIGKILL of the whole process: what a power cut leaves),
// panic (an exception in that thread: the member's fatal path), sleep(ms)
// (blocks that thread), error (the call site takes its error path, where it
// has one). "N*action" acts on the first N hits only, "@N action" on the Nth
// hit only; other hits pass.
//
// Cost when unarmed: call sites test FAILPOINTS_ARMED, a constant false, and
// do nothing else (bench: `npm run bench:compare` with and without).

import { writeSync } from 'node:fs';

export const FAILPOINT_NAMES = [
  'walBeforeFsync', 'walAfterFsync',
  'applyBeforeCommit', 'applyAfterCommit', 'applyAfterAnswers',
  'raftBeforeLeaderSend', 'raftBeforeSend',
  'snapshotBeforeSave', 'snapshotAfterSave', 'snapshotBeforeInstall', 'snapshotInstallAfterMarker', 'snapshotAfterInstall',
  'compactBeforeSweep', 'compactSweepStep', 'compactAfterSweep',
  'confChangeBeforeApply', 'leaseBeforeRevoke',
  // Deliberate bugs, to show the fault checkers catch them (test/faults/faults.test.ts), each with
  // "error": rangeBeforeReadIndex serves a linearizable Range from local state without ReadIndex;
  // walAckBeforeFsync acknowledges WAL batches as durable at once, buffering them and writing
  // and fsyncing every 300 ms (a periodic flush); watchDropAfterInstall loses the first event delivered to
  // each watcher after a snapshot install.
  'rangeBeforeReadIndex', 'walAckBeforeFsync', 'watchDropAfterInstall',
] as const;
export type FailpointName = (typeof FAILPOINT_NAMES)[number];

type Action = { kind: 'crash' } | { kind: 'panic' } | { kind: 'error' } | { kind: 'sleep'; ms: number };
interface Armed { action: Action; first: number; only: number; hits: number }

export class FailpointError extends Error {
  override name = 'FailpointError';
}

function parseAction(text: string): Action {
  const t = text.trim();
  if (t === 'crash' || t === 'panic' || t === 'error') return { kind: t };
  const m = /^sleep\((\d+)\)$/.exec(t);
  if (m) return { kind: 'sleep', ms: Number(m[1]) };
  throw new FailpointError(`unknown failpoint action "${t}" (crash, panic, error, sleep(ms))`);
}

/** Parses ETSD_FAILPOINTS; throws on a name or action it does not know, so a typo never silently arms nothing. */
export function parseFailpoints(spec: string): Map<FailpointName, Armed> {
  const out = new Map<FailpointName, Armed>();
  for (const part of spec.split(';').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new FailpointError(`failpoint "${part}" has no action (name=action)`);
    const name = part.slice(0, eq).trim();
    if (!(FAILPOINT_NAMES as readonly string[]).includes(name)) throw new FailpointError(`unknown failpoint "${name}"`);
    let rest = part.slice(eq + 1).trim();
    let first = Infinity;
    let only = 0;
    const count = /^(\d+)\*(.*)$/.exec(rest);
    const nth = /^@(\d+)\s+(.*)$/.exec(rest);
    if (count) { first = Number(count[1]); rest = count[2]!; } else if (nth) { only = Number(nth[1]); rest = nth[2]!; }
    out.set(name as FailpointName, { action: parseAction(rest), first, only, hits: 0 });
  }
  return out;
}

const spec = process.env['ETSD_FAILPOINTS'] ?? '';
const armed = spec === '' ? null : parseFailpoints(spec);

/** False unless ETSD_FAILPOINTS arms something: call sites test it first. */
export const FAILPOINTS_ARMED: boolean = armed !== null && armed.size > 0;

/**
 * A failpoint was reached. Returns true when the call site must take its
 * error path ("error"); crash and panic do not return; sleep returns false
 * after blocking the thread.
 */
export function failpoint(name: FailpointName): boolean {
  const a = armed?.get(name);
  if (!a) return false;
  a.hits++;
  if (a.only > 0 ? a.hits !== a.only : a.hits > a.first) return false;
  // Straight to fd 2: a worker thread's process.stderr goes through the main thread, too late before a crash.
  writeSync(2, `etsd: failpoint ${name} hit ${a.hits}: ${a.action.kind}\n`);
  switch (a.action.kind) {
    case 'crash': process.kill(process.pid, 'SIGKILL'); throw new FailpointError(`failpoint ${name}: crash`);
    case 'panic': throw new FailpointError(`failpoint ${name}: panic`);
    case 'sleep': Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, a.action.ms); return false;
    case 'error': return true;
  }
}
