// HashKV equal to etcd 3.4's: the same operations on a real etcd and on etsd,
// then `etcdctl endpoint hashkv -w json` at several revisions (current, in
// between, right above a compaction, after every key is deleted so etcd's
// keep set is empty, after a second compaction) gives the same hash, compact
// revision and header revision; the compact revision itself and a future one
// give the same errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrerequisites, runEtcdctl, startServer, stopServer, waitReady, type ServerHandle } from './harness.js';

interface HashKVJson { HashKV: { header: { revision: number }; hash?: number; compact_revision?: number } }

async function ctl(h: ServerHandle, args: string[], stdin = ''): Promise<string> {
  const r = await runEtcdctl(h, args, Buffer.from(stdin), 30_000);
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')} failed on ${h.kind}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** The answer at `rev`: hash, compact revision and header revision, or the error text. */
async function hashKV(h: ServerHandle, rev: number): Promise<string> {
  const r = await runEtcdctl(h, ['endpoint', 'hashkv', '--rev', String(rev), '-w', 'json'], Buffer.alloc(0), 30_000);
  if (r.code !== 0) {
    const m = /(etcdserver: .*|mvcc: .*)$/m.exec(r.stderr.toString());
    return `error: ${m ? m[1] : r.stderr.toString()}`;
  }
  const [j] = JSON.parse(r.stdout.toString()) as HashKVJson[];
  return `hash ${j!.HashKV.hash ?? 0} compact ${j!.HashKV.compact_revision ?? 0} revision ${j!.HashKV.header.revision}`;
}

/** One scenario, with the answers at each checkpoint recorded. */
async function scenario(h: ServerHandle): Promise<string[]> {
  const out: string[] = [];
  const at = async (label: string, revs: number[]) => { for (const r of revs) out.push(`${label} @${r}: ${await hashKV(h, r)}`); };
  await ctl(h, ['put', 'a', '1']); // 2
  await ctl(h, ['put', 'a', '2']); // 3
  await ctl(h, ['put', 'b', 'x']); // 4
  await ctl(h, ['txn'], '\nput c 1\nput d 2\ndel a\n\n\n'); // 5
  await ctl(h, ['del', 'b']); // 6
  await at('no compaction', [0, 2, 4, 5, 6]);
  await ctl(h, ['compact', '4']);
  await ctl(h, ['put', 'e', Buffer.alloc(3000, 'e').toString()]); // 7
  await ctl(h, ['put', 'c', 'c2']); // 8
  await at('compacted at 4', [0, 3, 4, 5, 6, 7, 8, 9]);
  await ctl(h, ['del', '--prefix', '']); // 9
  await at('every key deleted', [0, 5, 8, 9]);
  await ctl(h, ['put', 'f', '1']); // 10
  await ctl(h, ['compact', '9']);
  await at('compacted at 9', [0, 9, 10]);
  return out;
}

test('HashKV: the same operations on real etcd and on etsd give the same answers', { timeout: 180_000 }, async (t) => {
  checkPrerequisites();
  const answers = new Map<string, string[]>();
  for (const kind of ['etcd', 'etsd'] as const) {
    const h = await startServer(kind, `hashkv${kind}`);
    t.after(() => stopServer(h));
    await waitReady(h);
    answers.set(kind, await scenario(h));
    await stopServer(h);
  }
  const etcd = answers.get('etcd')!;
  // The scenario reaches the cases it means to: hashes, the compacted error, the future error.
  assert.ok(etcd.some((a) => a.includes('required revision has been compacted')), etcd.join('\n'));
  assert.ok(etcd.some((a) => a.includes('future revision')), etcd.join('\n'));
  assert.deepEqual(answers.get('etsd'), etcd);
});
