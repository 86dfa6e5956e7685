// The reused RocksDB write batch (storage/write-batch.ts) on a real RocksDB:
// what it writes reads back, in order (a later record of a key wins), empty
// values and deletes included; it is empty again after a write; its staging
// buffer grows past its first size; and the addon refuses a malformed staged
// record without touching the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { ReusableBatch } from '../../src/storage/write-batch.js';
import { rocksdbNative, rocksdbUnavailableReason } from '../../src/native/rocksdb.js';

async function withDb(fn: (db: RocksLevel) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'etsd-batch-'));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  try {
    await fn(db);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const get = (db: RocksLevel, k: string): Buffer | undefined => db._getManySync([Buffer.from(k)], { valueEncoding: 'buffer' })[0] ?? undefined;

test('puts and deletes read back in batch order, and the batch is empty after its write', async () => {
  await withDb(async (db) => {
    const b = new ReusableBatch(db);
    b.put(Buffer.from('a'), Buffer.from('1'));
    b.put(Buffer.from('b'), Buffer.from('2'));
    b.put(Buffer.from('a'), Buffer.from('3'));
    b.del(Buffer.from('b'));
    b.put(Buffer.from('c'), Buffer.alloc(0));
    assert.equal(b.length, 5);
    assert.equal(b.byteLength, 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1);
    b.write();
    assert.equal(b.length, 0);
    assert.equal(get(db, 'a')?.toString(), '3');
    assert.equal(get(db, 'b'), undefined);
    assert.deepEqual(get(db, 'c'), Buffer.alloc(0));
    b.write();
    assert.equal(get(db, 'a')?.toString(), '3', 'an empty write changes nothing');
    b.put(Buffer.from('a'), Buffer.from('4'));
    b.clear();
    b.write();
    assert.equal(get(db, 'a')?.toString(), '3', 'cleared records are not written');
  });
});

test('a batch larger than the staging buffer (and keys with every byte value) is written whole', async () => {
  await withDb(async (db) => {
    const b = new ReusableBatch(db);
    const value = Buffer.alloc(3000, 7);
    const keys: Buffer[] = [];
    for (let i = 0; i < 100; i++) keys.push(Buffer.from([0, 255, i, 0]));
    for (const k of keys) b.put(k, value);
    b.write();
    for (const k of keys) assert.deepEqual(db._getManySync([k], { valueEncoding: 'buffer' })[0], value);
  });
});

test('the addon refuses a malformed staged record and adds nothing after it', { skip: rocksdbNative === null && `no RocksDB access: ${rocksdbUnavailableReason}` }, async () => {
  await withDb(async (db) => {
    const batch = db.batch();
    const sym = Object.getOwnPropertySymbols(batch).find((s) => s.description === 'batchContext')!;
    const ext = (batch as unknown as Record<symbol, object>)[sym]!;
    const rec = (op: number, k: string, v: string) => {
      const h = Buffer.alloc(9);
      h[0] = op;
      h.writeUInt32LE(k.length, 1);
      h.writeUInt32LE(v.length, 5);
      return Buffer.concat([h, Buffer.from(k), Buffer.from(v)]);
    };
    const good = rec(1, 'x', 'y');
    assert.equal(rocksdbNative!.batchAppend(ext, good, good.length), 1);
    const longKey = rec(1, 'k', 'v');
    longKey.writeUInt32LE(1000, 1);
    for (const bad of [Buffer.concat([good, longKey]), Buffer.concat([good, rec(2, 'k', 'v')]), Buffer.concat([good, rec(0, 'k', 'v')]), Buffer.concat([good, Buffer.alloc(4)])]) {
      assert.throws(() => rocksdbNative!.batchAppend(ext, bad, bad.length), /malformed record|truncated record header/);
    }
    assert.throws(() => rocksdbNative!.batchAppend(ext, good, good.length + 1), RangeError);
    batch._clear();
    batch._writeSync({ sync: false });
    assert.equal(get(db, 'x'), undefined);
  });
});

test('lanes reach RocksDB in lane order whatever the order of adding; reservePut writes a record in place', async () => {
  await withDb(async (db) => {
    const b = new ReusableBatch(db, 3);
    // Added first, but in lane 2: written last, so it wins over lane 0's put of the same key.
    let at = b.reservePut(2, 1, 4);
    let s = b.stageOf(2);
    s.write('x', at, 'latin1');
    s.write('last', at + 1, 'latin1');
    b.put(Buffer.from('x'), Buffer.from('first'));
    // Within a lane the later record wins: 'z' is deleted, then put again.
    b.del(Buffer.from('z'));
    at = b.reservePut(1, 1, 0);
    b.stageOf(1).write('y', at, 'latin1');
    b.put(Buffer.from('z'), Buffer.from('kept'));
    // A reservation past the first stage size moves the lane's buffer: stageOf is read after it.
    const big = Buffer.alloc(100_000, 9);
    at = b.reservePut(1, 3, big.length);
    s = b.stageOf(1);
    s.write('big', at, 'latin1');
    big.copy(s, at + 3);
    assert.equal(b.length, 6);
    b.write();
    assert.equal(get(db, 'x')?.toString(), 'last');
    assert.deepEqual(get(db, 'y'), Buffer.alloc(0));
    assert.equal(get(db, 'z')?.toString(), 'kept');
    assert.deepEqual(get(db, 'big'), big);
    assert.equal(b.length, 0);
  });
});

test('without the addon the staged records are replayed through the binding, lanes in order', async () => {
  await withDb(async (db) => {
    const b = new ReusableBatch(db, 2);
    // What the batch does when the addon is not loaded (src/native/rocksdb.ts): no WriteBatch external to append to.
    (b as unknown as { ext: object | null }).ext = null;
    const at = b.reservePut(1, 1, 2);
    b.stageOf(1).write('kv2', at, 'latin1');
    b.put(Buffer.from('k'), Buffer.from('v1'));
    b.put(Buffer.from('gone'), Buffer.from('x'));
    b.del(Buffer.from('gone'));
    b.write();
    assert.equal(get(db, 'k')?.toString(), 'v2', 'lane 1 after lane 0');
    assert.equal(get(db, 'gone'), undefined);
    assert.equal(b.length, 0);
  });
});
