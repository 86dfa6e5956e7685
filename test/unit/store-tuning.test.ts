// The store's mutable RocksDB options (storage/store-options.ts STORE_TUNING),
// set through the addon's DB::SetOptions on a real RocksDB: they take effect
// (memtables stay at 16 MiB instead of the binding's 64), and RocksDB's own
// refusal of an option comes back as an Error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { rocksdbNative, rocksdbUnavailableReason } from '../../src/native/rocksdb.js';
import { STORE_DB_TUNING, STORE_OPEN_OPTIONS, STORE_TUNING, tuneStore } from '../../src/storage/store-options.js';

const skip = rocksdbNative === null && `no RocksDB access: ${rocksdbUnavailableReason}`;

async function withDb(fn: (db: RocksLevel, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'etsd-tuning-'));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ ...STORE_OPEN_OPTIONS });
  try {
    await fn(db, dir);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes `mib` MiB of 1 KiB values under distinct keys. */
async function fill(db: RocksLevel, mib: number): Promise<void> {
  const value = Buffer.alloc(1024, 3);
  for (let i = 0; i < mib * 1024; i += 1024) {
    const b = db.batch();
    for (let j = i; j < i + 1024; j++) b.put(Buffer.from(`k${String(j).padStart(9, '0')}`), value);
    await b.write();
  }
}

test('tuned, the active memtable stays near 16 MiB and the rest is flushed to SST files', { skip, timeout: 120_000 }, async () => {
  await withDb(async (db, dir) => {
    assert.equal(tuneStore(db, dir), null);
    await fill(db, 48);
    const active = rocksdbNative!.intProperty(db.handle, dir, 'rocksdb.cur-size-active-mem-table')!;
    assert.ok(active <= 20 * 1024 * 1024, `active memtable ${active} bytes`);
    // Flushes run in the background: wait for the first SST file.
    const until = Date.now() + 30_000;
    while ((rocksdbNative!.intProperty(db.handle, dir, 'rocksdb.total-sst-files-size') ?? 0) === 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(rocksdbNative!.intProperty(db.handle, dir, 'rocksdb.total-sst-files-size')! > 0, 'no memtable was flushed');
  });
});

test('untuned (the binding\'s 64 MiB memtables), the same writes stay in the memtable: the tuning is what changed it', { skip, timeout: 120_000 }, async () => {
  await withDb(async (db, dir) => {
    await fill(db, 24);
    const active = rocksdbNative!.intProperty(db.handle, dir, 'rocksdb.cur-size-active-mem-table')!;
    assert.ok(active > 20 * 1024 * 1024, `active memtable ${active} bytes`);
  });
});

test('RocksDB\'s refusal of an option comes back as an Error with its status', { skip }, async () => {
  await withDb(async (db, dir) => {
    assert.throws(() => rocksdbNative!.setOptions(db.handle, dir, { no_such_option: '1' }),
      (e: Error & { code?: string }) => e.code === 'ETSD_ROCKSDB_OPTIONS' && /Invalid argument/.test(e.message));
    assert.throws(() => rocksdbNative!.setOptions(db.handle, '/not/its/location', STORE_TUNING), /location/);
    // Database-wide options go through DB::SetDBOptions, which knows other names.
    assert.throws(() => rocksdbNative!.setDBOptions(db.handle, dir, { write_buffer_size: '1048576' }),
      (e: Error & { code?: string }) => e.code === 'ETSD_ROCKSDB_OPTIONS' && /Unrecognized option: write_buffer_size/.test(e.message));
    assert.doesNotThrow(() => rocksdbNative!.setDBOptions(db.handle, dir, STORE_DB_TUNING));
  });
});
