// Defragment's machinery on a real RocksDB opened through @nxtedition/rocksdb,
// as the apply worker opens it: the addon's compaction gives back the space
// of deleted records, checks the handle it is given, and can be canceled; the
// Defragmenter runs one compaction at a time, lets the requests made meanwhile
// share the next one, and waits for RocksDB on stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { rocksdbNative, rocksdbUnavailableReason, type RocksdbNative } from '../../src/native/rocksdb.js';
import { Defragmenter } from '../../src/member/defragmenter.js';
import { dbSizeFrom } from '../../src/storage/mvcc/db-size.js';
import { EtcdError, GrpcCode } from '../../src/common/errors.js';
import { createLogger } from '../../src/common/log.js';

const log = createLogger('error', { name: 'test' });
const skip = rocksdbNative === null && `no RocksDB access: ${rocksdbUnavailableReason}`;

async function withDb(fn: (db: RocksLevel, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'etsd-defrag-'));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true, walCompression: false, compression: false });
  try {
    await fn(db, dir);
  } finally {
    if (db.status === 'open') await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `n` keys of 1 KiB, then every one but each fourth deleted. */
async function fillAndDelete(db: RocksLevel, n: number): Promise<void> {
  const value = Buffer.alloc(1024, 7);
  const key = (i: number) => Buffer.from(`k${String(i).padStart(8, '0')}`);
  for (let i = 0; i < n; i += 1000) {
    const batch = db.batch();
    for (let j = i; j < i + 1000; j++) batch.put(key(j), value);
    await batch.write();
  }
  for (let i = 0; i < n; i += 1000) {
    const batch = db.batch();
    for (let j = i; j < i + 1000; j++) if (j % 4 !== 0) batch.del(key(j));
    await batch.write();
  }
}

const sizeOf = (native: RocksdbNative, db: RocksLevel, dir: string) => dbSizeFrom((p) => native.intProperty(db.handle, dir, p));

test('a compaction of the whole range gives back the space of deleted records', { skip, timeout: 120_000 }, async () => {
  const native = rocksdbNative!;
  await withDb(async (db, dir) => {
    await fillAndDelete(db, 20_000);
    const before = sizeOf(native, db, dir);
    const r = await native.compactAll(db.handle, dir).done;
    const after = sizeOf(native, db, dir);
    assert.ok(before > 20_000 * 1024, `size before ${before}`);
    // A quarter of the values stays, plus keys and SST overhead.
    assert.ok(after < before / 2, `size ${before} -> ${after}`);
    assert.equal(r.sstAfter, native.intProperty(db.handle, dir, 'rocksdb.total-sst-files-size'));
    // Everything still reads.
    const rows = db.querySync({ gte: Buffer.from('k'), lt: Buffer.from('l'), keys: true, values: false, keyEncoding: 'buffer' }).rows;
    assert.equal(rows.length / 2, 5_000);
  });
});

test('the addon checks the handle, and a canceled compaction rejects with RocksDB\'s status', { skip, timeout: 60_000 }, async () => {
  const native = rocksdbNative!;
  await withDb(async (db, dir) => {
    assert.throws(() => native.compactAll(db.handle, `${dir}/other`), { code: 'ETSD_ROCKSDB_LAYOUT' });
    assert.throws(() => native.intProperty(db.handle, `${dir}x`, 'rocksdb.total-sst-files-size'), { code: 'ETSD_ROCKSDB_LAYOUT' });
    assert.equal(native.intProperty(db.handle, dir, 'rocksdb.no-such-property'), null);
    const c = native.compactAll(db.handle, dir);
    c.cancel();
    // Canceled before RocksDB looked at it, or done already: both settle, neither hangs.
    await c.done.then(() => undefined, (err: Error) => assert.match(err.message, /manual compaction paused/));
    const handle = db.handle;
    await db.close();
    assert.throws(() => native.compactAll(handle, dir), { code: 'ETSD_ROCKSDB_CLOSED' });
  });
});

test('requests made while one runs share the next compaction; stop waits for RocksDB and refuses later ones', { skip, timeout: 120_000 }, async () => {
  const native = rocksdbNative!;
  await withDb(async (db, dir) => {
    await fillAndDelete(db, 20_000);
    let started = 0;
    const counting: RocksdbNative = { ...native, compactAll: (h, l) => { started++; return native.compactAll(h, l); } };
    const d = new Defragmenter(counting, '', db.handle, dir, log);
    const first = d.defragment();
    const second = d.defragment();
    const third = d.defragment();
    assert.equal(second, third);
    assert.notEqual(first, second);
    await Promise.all([first, second]);
    assert.equal(started, 2);

    const running = d.defragment();
    await d.stop();
    // stop() returned: RocksDB is done with the database, whether the run finished or was canceled.
    await running.then(() => undefined, (err: unknown) => {
      assert.ok(err instanceof EtcdError);
      assert.equal(err.message, 'etcdserver: server stopped');
    });
    await assert.rejects(d.defragment(), { message: 'etcdserver: server stopped' });
    assert.equal(started, 3);
  });
});

test('without the addon\'s RocksDB access, Defragment is UNIMPLEMENTED with the reason', async () => {
  const d = new Defragmenter(null, 'disabled by ETSD_NO_NATIVE=1', 0n, '/nowhere', log);
  await assert.rejects(d.defragment(), (err: unknown) => {
    assert.ok(err instanceof EtcdError);
    assert.equal(err.code, GrpcCode.UNIMPLEMENTED);
    assert.match(err.message, /unavailable: disabled by ETSD_NO_NATIVE=1$/);
    return true;
  });
});
