// Maintenance.Defragment with the real etcdctl, against etcd 3.4 and etsd:
// `etcdctl defrag` and `defrag --cluster` print the same, auth refuses a
// non-admin the same way, and after filling the store to its quota, deleting
// everything and compacting, a defrag shrinks the dbSize `endpoint status`
// reports, on both, so the alarm can be disarmed and writes go on. Without the
// native addon, etsd says it cannot defragment (UNIMPLEMENTED) and why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPrerequisites, runEtcdctl, stopServer, waitReady, type ServerHandle, type ServerKind } from './harness.js';
import { freeUrls, startWithFlags } from './snapshot-servers.js';
import { KvClient, b, isGrpcError, op } from '../integration/kv-client.js';
import { EtsdProcess, makeTempDir, removeTempDir } from '../integration/etsd-process.js';

const KINDS: readonly ServerKind[] = ['etcd', 'etsd'];
const QUOTA = 8 * 1024 * 1024;
const VALUE_BYTES = 4096;
const PUTS_PER_TXN = 16;
const NONE = Buffer.alloc(0);

async function start(kind: ServerKind, label: string, flags: string[] = []): Promise<ServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), `etsd-compat-${label}-`));
  const urls = await freeUrls();
  const h = startWithFlags(kind, label, dir, urls, [
    '--name', 'd', '--data-dir', join(dir, 'data'), '--initial-advertise-peer-urls', urls.peer,
    '--initial-cluster', `d=${urls.peer}`, ...flags,
  ]);
  try {
    await waitReady(h);
  } catch (err) {
    await stopServer(h);
    throw err;
  }
  return h;
}

/** etcdctl's exit code and output, with the server's ports masked and clientv3's JSON log lines left out. */
async function run(h: ServerHandle, args: string[]): Promise<string> {
  const r = await runEtcdctl(h, args, NONE, 120_000);
  const port = h.endpoint.split(':')[1]!;
  const text = (r.stdout.toString() + r.stderr.toString()).split('\n').filter((l) => !l.startsWith('{"level"')).join('\n');
  return `${args.join(' ')} -> ${r.code}\n${text.replaceAll(port, '<port>')}`;
}

async function ok(h: ServerHandle, args: string[]): Promise<string> {
  const r = await runEtcdctl(h, args, NONE, 120_000);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} on ${h.label} failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

async function status(h: ServerHandle): Promise<{ dbSize: number; revision: number }> {
  const [s] = JSON.parse(await ok(h, ['endpoint', 'status', '-w', 'json'])) as { Status: { dbSize: number; header: { revision: number } } }[];
  return { dbSize: s!.Status.dbSize, revision: s!.Status.header.revision };
}

test('etcdctl defrag, defrag --cluster and auth: etsd answers as etcd 3.4', { timeout: 240_000 }, async () => {
  checkPrerequisites();
  const seen: Record<string, string[]> = {};
  for (const kind of KINDS) {
    const h = await start(kind, `defrag-out-${kind}`);
    try {
      const out: string[] = [];
      await ok(h, ['put', 'k', 'v']);
      out.push(await run(h, ['defrag']));
      out.push(await run(h, ['defrag', '--cluster']));
      await ok(h, ['user', 'add', 'root', '--new-user-password=rootpw']);
      await ok(h, ['user', 'add', 'plain', '--new-user-password=plainpw']);
      await ok(h, ['auth', 'enable']);
      // etcd's authMaintenanceServer: Defragment is for admins only.
      out.push(await run(h, ['--user=plain:plainpw', 'defrag']));
      out.push(await run(h, ['defrag']));
      out.push(await run(h, ['--user=root:rootpw', 'defrag']));
      seen[kind] = out;
    } finally {
      await stopServer(h);
    }
  }
  assert.deepEqual(seen['etsd'], seen['etcd']);
  assert.match(seen['etsd']![0]!, /-> 0\nFinished defragmenting etcd member\[127\.0\.0\.1:<port>\]/);
});

/** Puts 4 KiB values under k/ in txns until the quota refuses one; how many went in. */
async function fillToQuota(client: KvClient): Promise<number> {
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  for (let n = 0; n < 4 * QUOTA / VALUE_BYTES; n += PUTS_PER_TXN) {
    const success = Array.from({ length: PUTS_PER_TXN }, (_, i) => op.put({ key: b(`k/${String(n + i).padStart(8, '0')}`), value }));
    try {
      await client.txn({ success }, 30_000);
    } catch (err) {
      if (isGrpcError(err) && err.message.includes('etcdserver: mvcc: database space exceeded')) return n;
      throw err;
    }
  }
  throw new Error(`the quota of ${QUOTA} bytes never refused a put`);
}

test('after delete and compaction, defrag shrinks Status dbSize below the quota on etcd and on etsd', { timeout: 300_000 }, async (t) => {
  checkPrerequisites();
  for (const kind of KINDS) {
    const h = await start(kind, `defrag-size-${kind}`, [`--quota-backend-bytes=${QUOTA}`]);
    const client = new KvClient(h.endpoint);
    try {
      const stored = await fillToQuota(client);
      assert.match(await ok(h, ['alarm', 'list']), /alarm:NOSPACE/);
      const full = await status(h);
      await ok(h, ['del', '--prefix', 'k/']);
      const rev = (await status(h)).revision;
      await ok(h, ['compact', String(rev), '--physical']);
      const compacted = await status(h);
      assert.match(await ok(h, ['defrag']), /^Finished defragmenting etcd member\[/);
      const defragged = await status(h);
      t.diagnostic(`${kind}: ${stored} values of ${VALUE_BYTES} B; dbSize full ${full.dbSize}, after delete+compact ${compacted.dbSize}, after defrag ${defragged.dbSize}`);
      assert.ok(full.dbSize >= QUOTA / 2, `${kind}: a store full to the quota reports dbSize ${full.dbSize}`);
      assert.ok(defragged.dbSize < compacted.dbSize / 4, `${kind}: dbSize ${compacted.dbSize} -> ${defragged.dbSize} after defrag`);
      // The space is back for the quota too: disarm, and a write fits again.
      await ok(h, ['alarm', 'disarm']);
      assert.equal((await ok(h, ['put', 'after', 'x'])).trim(), 'OK');
      assert.equal(await ok(h, ['alarm', 'list']), '');
    } finally {
      client.close();
      await stopServer(h);
    }
  }
});

test('without the native addon, Defragment answers UNIMPLEMENTED and says why', { timeout: 120_000 }, async () => {
  const dir = makeTempDir('defrag-nonative');
  const p = await EtsdProcess.startReady({ dataDir: dir, env: { ETSD_NO_NATIVE: '1' } });
  const client = new KvClient(p.endpoint);
  try {
    await assert.rejects(client.call('/etcdserverpb.Maintenance/Defragment' as never, NONE, 30_000), (err: unknown) => {
      assert.ok(isGrpcError(err));
      assert.equal(err.code, 12);
      assert.equal(err.details, "etsd: Defragment needs the etsd native addon's RocksDB access, which is unavailable: " +
        'the etsd native addon is not in use (disabled by ETSD_NO_NATIVE=1)');
      return true;
    });
  } finally {
    client.close();
    await p.stop();
    removeTempDir(dir);
  }
});
