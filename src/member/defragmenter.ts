// Maintenance.Defragment: a RocksDB manual compaction of the whole key range
// (native/rocksdb.ts), which drops what MVCC compaction and deletes left
// behind and gives the space back, so the database size (Status dbSize, the
// quota) shrinks. Unlike etcd's bbolt defrag it stops nothing: reads and
// writes go on while RocksDB rewrites the files in its background threads,
// and no JS thread waits for it.
//
// It runs here, on the main thread's handle to the apply worker's database,
// because the call is asynchronous: the apply worker (the only writer) and
// the one-off pool (bcrypt for Authenticate, Hash, Snapshot) stay free.
//
// Bounds: one compaction at a time. A request made while one runs waits for
// the next one (which starts after the running one, so it covers every
// delete that request could have seen); all such requests share it.
// stop() cancels the running compaction and waits for it: the database must
// stay open until RocksDB has returned.

import { EtcdError, Errors } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { Compaction, RocksdbNative } from '../native/rocksdb.js';

export class Defragmenter {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private current: Compaction | null = null;
  private stopped = false;

  constructor(
    private readonly native: RocksdbNative | null,
    /** Why `native` is null (answered as UNIMPLEMENTED). */
    private readonly unavailableReason: string,
    private readonly dbHandle: bigint,
    private readonly dbDir: string,
    private readonly log: Logger,
  ) {}

  /** Resolves when a compaction that started after this call finished. */
  defragment(): Promise<void> {
    if (this.native === null) return Promise.reject(Errors.defragUnavailable(this.unavailableReason));
    if (this.next !== null) return this.next;
    if (this.running === null) return this.start(this.native);
    const native = this.native;
    const after = this.running.then(noop, noop);
    this.next = after.then(() => {
      this.next = null;
      return this.start(native);
    });
    return this.next;
  }

  /** Cancels the running compaction and waits until RocksDB returned; later requests fail. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.cancel();
    await Promise.all([this.running, this.next].map((p) => p?.then(noop, noop)));
  }

  private start(native: RocksdbNative): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    let c: Compaction;
    try {
      c = native.compactAll(this.dbHandle, this.dbDir);
    } catch (err) {
      // The handle did not check out: a bug or a changed binding, never the client's doing.
      this.log.error({ err }, 'failed to defragment');
      return Promise.reject(Errors.unknown(`etsd: defragment: ${errorText(err)}`));
    }
    this.current = c;
    this.log.info('starting defragment');
    const t0 = performance.now();
    const run = c.done.then((r) => {
      this.log.info({ 'sst-size-before': r.sstBefore, 'sst-size-after': r.sstAfter, took: `${Math.round(performance.now() - t0)}ms` }, 'finished defragment');
    }, (err: unknown) => {
      if (this.stopped) throw Errors.stopped();
      this.log.warn({ err }, 'failed to defragment');
      throw err instanceof EtcdError ? err : Errors.unknown(errorText(err));
    }).finally(() => {
      this.current = null;
      this.running = null;
    });
    this.running = run;
    return run;
  }
}

function noop(): void {}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
