// Which files a member uses (src/member/data-layout.ts): etsd's own data dir,
// an etcd data dir to take over, one already taken over, and one etcd ran on
// again after the takeover (refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../src/common/config.js';
import { ETCD_FILES_RECORD, etcdFilesFingerprint, resolveLayout } from '../../src/member/data-layout.js';

const WAL_NAME = '0000000000000000-0000000000000000.wal';

test('data layout: new, etsd\'s own, etcd\'s to take over (with and without --wal-dir), taken over, etcd ran again', () => {
  const root = mkdtempSync(join(tmpdir(), 'etsd-layout-'));
  try {
    const dataDir = join(root, 'data');
    const cfg = parseArgs(['--data-dir', dataDir]).config;
    const member = join(dataDir, 'member');
    assert.deepEqual(resolveLayout(cfg), { memberDir: member, walDir: join(member, 'wal'), etcd: null });

    // etcd's files: a WAL and the db.
    mkdirSync(join(member, 'wal'), { recursive: true });
    mkdirSync(join(member, 'snap'), { recursive: true });
    writeFileSync(join(member, 'wal', WAL_NAME), Buffer.alloc(64));
    assert.equal(resolveLayout(cfg).etcd, null, 'a WAL without member/snap/db is not etcd\'s data dir');
    writeFileSync(join(member, 'snap', 'db'), Buffer.alloc(64));
    const swapped = join(member, 'etsd');
    assert.deepEqual(resolveLayout(cfg), {
      memberDir: swapped, walDir: join(swapped, 'wal'), etcd: { walDir: join(member, 'wal'), dbPath: join(member, 'snap', 'db') },
    });
    const walDir = join(root, 'waldir');
    mkdirSync(walDir);
    writeFileSync(join(walDir, WAL_NAME), Buffer.alloc(64));
    const withWalDir = parseArgs(['--data-dir', dataDir, '--wal-dir', walDir]).config;
    assert.deepEqual(resolveLayout(withWalDir), {
      memberDir: swapped, walDir: join(walDir, 'etsd'), etcd: { walDir, dbPath: join(member, 'snap', 'db') },
    });

    // Taken over: etsd's files beside etcd's, with etcd's files as they were.
    mkdirSync(swapped);
    writeFileSync(join(swapped, 'ids.json'), '{}');
    writeFileSync(join(swapped, ETCD_FILES_RECORD), JSON.stringify(etcdFilesFingerprint(join(member, 'wal'), join(member, 'snap'))));
    assert.deepEqual(resolveLayout(cfg), { memberDir: swapped, walDir: join(swapped, 'wal'), etcd: null });

    // etcd ran on it again: its WAL changed.
    utimesSync(join(member, 'wal', WAL_NAME), new Date(), new Date(Date.now() + 5000));
    assert.throws(() => resolveLayout(cfg), /changed after etsd took it over/);

    // etsd's own data dir is never mistaken for etcd's.
    rmSync(swapped, { recursive: true });
    writeFileSync(join(member, 'ids.json'), '{}');
    assert.deepEqual(resolveLayout(cfg), { memberDir: member, walDir: join(member, 'wal'), etcd: null });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
