// The pool for bounded one-off jobs (piscina): snapshot files, Hash/HashKV,
// bcrypt password hashing and checks. Never on the hot path.
//
// Bounds: at most MAX_THREADS threads (they exit after IDLE_MS idle), and at
// most MAX_QUEUE jobs waiting. A job past that is refused at once with etcd's
// "too many requests" rather than queued without limit.

import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { Errors } from '../common/errors.js';
import type { PoolResult, PoolTask } from './pool-tasks.js';

// One thread per core: bcrypt is the pool's heaviest job and etcd spreads it
// over every core too; threads exit when idle, so this costs nothing at rest.
const MAX_THREADS = Math.max(1, availableParallelism());
// etcd queues Authenticate calls behind raft without a small cap; 16 made a
// burst of 50 clients authenticating get "too many requests" by the thousand.
const MAX_QUEUE = 1024;
const IDLE_MS = 30_000;

export class OneOffPool {
  private readonly pool = new Piscina<PoolTask, unknown>({
    filename: new URL('./pool-tasks.js', import.meta.url).href,
    minThreads: 0, maxThreads: MAX_THREADS, maxQueue: MAX_QUEUE, idleTimeout: IDLE_MS,
  });

  run<T extends PoolTask>(task: T): Promise<PoolResult<T>> {
    if (this.pool.queueSize >= MAX_QUEUE) return Promise.reject(Errors.tooManyRequests());
    return this.pool.run(task) as Promise<PoolResult<T>>;
  }

  close(): Promise<void> { return this.pool.destroy(); }
}
