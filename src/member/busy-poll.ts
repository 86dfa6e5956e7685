// Busy polling on the main thread while a few requests wait for a worker.
//
// A worker's answer reaches a sleeping main thread through Atomics.notify and
// an eventfd. Where an idle CPU must be woken by an interrupt (any VM), each
// such wake costs the worker tens of microseconds and the answer as much again
// in latency: with one client, three of them (main -> WAL -> apply -> main)
// made up a third of a put. While 1..maxWaiting requests wait, the main
// thread's ring loops poll on every event-loop turn instead of sleeping, so
// the workers see it awake and skip the wake, and the answer is read at once.
//
// Bounded three ways: an idle member never polls (nothing waits); past
// maxWaiting the loops sleep as before, so under load the polling never takes
// a core the workers need; and polling stops after pollMs with no answer (a
// slow fsync), until the next answer or request.

import type { Ring } from '../workers/ring/ring.js';
import type { RequestObserver } from './requests.js';

export interface BusyPollLimits {
  /** Poll only while at most this many requests wait (0: never poll). */
  maxWaiting: number;
  /** Stop polling after this long with no answer and no new request. */
  pollMs: number;
  /** With nothing waiting, poll this long after the last answer: a client's next request usually comes sooner. */
  lingerMs: number;
}

/**
 * One request at a time: measured with etcd's tool on 2 cores, polling while
 * 2..32 requests waited took CPU the workers needed at 10 clients (-11%).
 */
export const DEFAULT_BUSY_POLL: BusyPollLimits = { maxWaiting: 1, pollMs: 2, lingerMs: 1 };
/** --busy-poll=false: the loops always sleep. */
export const NO_BUSY_POLL: BusyPollLimits = { maxWaiting: 0, pollMs: 0, lingerMs: 0 };

export class BusyPoll implements RequestObserver {
  private lastProgress = 0;
  /** Most requests waiting at once since nothing last waited, and that figure for the period before. */
  private peak = 0;
  private lastPeak = Infinity;
  private readonly rings: Ring[] = [];

  constructor(
    /** Requests waiting for a worker's answer. */
    private readonly waiting: () => number,
    private readonly limits: BusyPollLimits = DEFAULT_BUSY_POLL,
  ) {}

  /** A ring whose loop polls or sleeps by this policy (woken to poll when a request starts waiting). */
  watch(ring: Ring): void {
    this.rings.push(ring);
  }

  /** A loop found its ring empty: true to look again on the next event-loop turn, false to sleep. */
  shouldPoll(): boolean {
    if (this.limits.maxWaiting === 0) return false;
    const n = this.waiting();
    const max = this.limits.maxWaiting;
    if (n > 0) return n <= max && performance.now() - this.lastProgress < this.limits.pollMs;
    if (this.peak > 0) {
      this.lastPeak = this.peak;
      this.peak = 0;
    }
    // Linger only after a period that never had more than max waiting: one client's pace.
    return this.lastPeak <= max && performance.now() - this.lastProgress < this.limits.lingerMs;
  }

  /** A worker answered a request: the polling window restarts. Only answers count, so a stream of watch events alone never keeps the main thread polling. */
  answered(): void {
    if (this.limits.maxWaiting > 0) this.lastProgress = performance.now();
  }

  /** A request started waiting: loops asleep on their rings get up and poll. */
  added(): void {
    if (this.limits.maxWaiting === 0) return; // --busy-poll off: no clock reads per request
    const n = this.waiting();
    if (n > this.peak) this.peak = n;
    if (n > this.limits.maxWaiting) return;
    this.lastProgress = performance.now();
    for (let i = 0; i < this.rings.length; i++) this.rings[i]!.interruptAsyncWait();
  }
}
