#!/usr/bin/env node
// etsdutl: offline tools on etcd-format snapshots, like etcdutl/etcdctl's.
//
//   etsdutl snapshot restore FILE [--data-dir D] [--name N] [--initial-cluster C]
//       [--initial-cluster-token T] [--initial-advertise-peer-urls U] [--skip-hash-check]
//
// restore makes a new etsd data dir from an etcd 3.4 snapshot (etcdctl
// snapshot save, from etcd or etsd): the keys with their whole history,
// leases, revision and compaction, the auth store (users, roles, enabled), and a new cluster identity derived from
// the flags as etcd derives it. Start etsd with the same flags on that dir.

import * as fs from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { ConfigError, parseArgs } from '../common/config.js';
import { formatId } from '../common/ids.js';
import { loadOrCreateIdentity } from '../member/identity.js';
import { checkSnapshotHash, importEtcdDb } from '../storage/bbolt/import.js';
import { STORE_OPEN_OPTIONS } from '../storage/store-options.js';
import { fsyncDir } from '../common/fsync-dir.js';

const USAGE = `usage: etsdutl snapshot restore <file> [--data-dir <dir>] [--name <name>] [--initial-cluster <name=url,...>]
       [--initial-cluster-token <token>] [--initial-advertise-peer-urls <urls>] [--skip-hash-check]`;

/** The flags restore passes on to etsd's own parser (the identity is derived exactly as etsd does at first start). */
const MEMBER_FLAGS = new Set(['--data-dir', '--name', '--initial-cluster', '--initial-cluster-token', '--initial-advertise-peer-urls']);

async function restore(args: string[]): Promise<void> {
  const file = args[0];
  if (file === undefined || file.startsWith('-')) throw new ConfigError('snapshot restore needs a snapshot file');
  let skipHashCheck = false;
  const flags: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const [flag, inline] = args[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === '--skip-hash-check') { skipHashCheck = inline === undefined || inline === 'true'; continue; }
    if (!MEMBER_FLAGS.has(flag)) throw new ConfigError(`unknown flag ${flag}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new ConfigError(`flag needs an argument: ${flag}`);
    flags.push(flag, value);
  }
  const cfg = parseArgs(flags).config;
  if (fs.existsSync(cfg.dataDir)) throw new Error(`data-dir "${cfg.dataDir}" exists`);
  checkSnapshotHash(file, skipHashCheck);

  // Built beside the final name and renamed into place, so a failed restore leaves no half data dir.
  const tmpDir = `${cfg.dataDir}.restoring`;
  fs.rmSync(tmpDir, { recursive: true, force: true });
  const memberDir = join(tmpDir, 'member');
  fs.mkdirSync(memberDir, { recursive: true });
  try {
    const db = new RocksLevel(join(memberDir, 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open({ ...STORE_OPEN_OPTIONS });
    let info;
    try {
      info = await importEtcdDb(file, db);
    } finally {
      await db.close();
    }
    const ids = await loadOrCreateIdentity(memberDir, cfg, null);
    // Synced before the rename, which is made durable too: a crash after "restored" leaves the whole data dir.
    fsyncDir(tmpDir);
    fsyncDir(memberDir);
    fs.renameSync(tmpDir, cfg.dataDir);
    fsyncDir(dirname(resolve(cfg.dataDir)));
    process.stdout.write(`restored snapshot ${file} into ${cfg.dataDir}: revision ${info.revision}, compacted at ${info.compactRevision}, `
      + `${info.revisions} revisions, ${info.leases} leases, ${info.users} users, ${info.roles} roles, auth ${info.authEnabled ? 'enabled' : 'disabled'}; member ${formatId(ids.memberId)} of new cluster ${formatId(ids.clusterId)}\n`);
  } catch (err) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    throw err;
  }
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'snapshot' && argv[1] === 'restore') return restore(argv.slice(2));
  throw new ConfigError(argv.length === 0 ? 'no command' : `unknown command "${argv.join(' ')}"`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`etsdutl: ${err.message}\n${USAGE}\n`);
  else process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
