// The pool for bounded one-off jobs (piscina): snapshot files, Hash/HashKV,
// bcrypt password hashing and checks. Never on the hot path.
//
// Bounds: at most MAX_THREADS threads (they exit after IDLE_MS idle), and at
// most MAX_QUEUE jobs waiting. A job past that is refused at once with etcd's
// "too many requests" rather than queued without limit.

import { Piscina } from 'piscina';
import { Errors } from '../common/errors.js';
import type { PoolResult, PoolTask } from './pool-tasks.js';

const MAX_THREADS = 1;
const MAX_QUEUE = 16;
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
