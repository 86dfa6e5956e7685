// /metrics beside real etcd 3.4: the same etcdctl script on both servers, then
// the counters an SRE's dashboards and alerts read (etcd's mixin: gRPC error
// rates from grpc_server_handled_total, leader changes, failed proposals,
// quota) must move the same way. Deltas around the script, so the readiness
// probes (whose number differs) do not count.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrerequisites, runEtcdctl, spawnEtcdctl, startServer, stopServer, waitReady, type ServerHandle } from './harness.js';
import { ETCD_API_VERSION } from '../../src/common/version.js';

checkPrerequisites();
const handles: ServerHandle[] = [];
after(async () => { for (const h of handles) await stopServer(h); });

type Metrics = Map<string, number>;

async function scrape(h: ServerHandle): Promise<Metrics> {
  const text = await (await fetch(`http://${h.endpoint}/metrics`)).text();
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const call = (kind: 'started' | 'handled', service: string, method: string, type: string, code?: string): string =>
  kind === 'started'
    ? `grpc_server_started_total{grpc_method="${method}",grpc_service="${service}",grpc_type="${type}"}`
    : `grpc_server_handled_total{grpc_code="${code}",grpc_method="${method}",grpc_service="${service}",grpc_type="${type}"}`;

const WATCHED = [
  call('started', 'etcdserverpb.KV', 'Put', 'unary'),
  call('handled', 'etcdserverpb.KV', 'Put', 'unary', 'OK'),
  call('handled', 'etcdserverpb.KV', 'DeleteRange', 'unary', 'OK'),
  call('handled', 'etcdserverpb.KV', 'Compact', 'unary', 'OK'),
  call('handled', 'etcdserverpb.KV', 'Range', 'unary', 'OutOfRange'),
  call('handled', 'etcdserverpb.KV', 'Txn', 'unary', 'InvalidArgument'),
  call('started', 'etcdserverpb.Watch', 'Watch', 'bidi_stream'),
  call('handled', 'etcdserverpb.Watch', 'Watch', 'bidi_stream', 'Canceled'),
  call('handled', 'etcdserverpb.Lease', 'LeaseRevoke', 'unary', 'NotFound'),
];

async function script(h: ServerHandle): Promise<void> {
  const ok = async (...args: string[]) => {
    const r = await runEtcdctl(h, args, Buffer.alloc(0));
    assert.equal(r.code, 0, `${h.label} etcdctl ${args.join(' ')}: ${r.stderr.toString()}`);
  };
  const fails = async (...args: string[]) => {
    const r = await runEtcdctl(h, args, Buffer.alloc(0));
    assert.notEqual(r.code, 0, `${h.label} etcdctl ${args.join(' ')} should fail`);
  };
  await ok('put', 'k', 'v');
  for (let i = 1; i <= 3; i++) {
    await ok('put', String(i), 'v');
    await ok('del', String(i));
    // A watch from revision 1 sees k's put, then the client goes away: Canceled on the server.
    const w = spawnEtcdctl(h, ['watch', 'k', '--rev', '1'], Buffer.alloc(0), 10_000);
    assert.ok(await w.waitLines(3, 10_000), `${h.label}: the watch printed nothing`);
    await w.stop();
  }
  await ok('compact', '3');
  await fails('get', 'k', '--rev', '2');
  // Two puts of one key in a txn: InvalidArgument ("duplicate key given in txn request").
  const txn = spawnEtcdctl(h, ['txn'], Buffer.from('\n\nput a 1\nput a 2\n\n'), 10_000);
  assert.notEqual((await txn.done).code, 0, `${h.label}: the duplicate-key txn should fail`);
  await fails('lease', 'revoke', '1234abcd');
}

test('the same etcdctl script moves the same /metrics counters on etcd 3.4 and etsd', { timeout: 180_000 }, async () => {
  const seen = new Map<string, Map<string, number>>();
  const totals = new Map<string, Metrics>();
  for (const kind of ['etcd', 'etsd'] as const) {
    const h = await startServer(kind, kind);
    handles.push(h);
    await waitReady(h);
    const before = await scrape(h);
    await script(h);
    // The server notices the watch client's exit when its connection closes: give it a moment.
    let afterScript = await scrape(h);
    for (let i = 0; i < 50 && (afterScript.get(WATCHED[7]!) ?? 0) - (before.get(WATCHED[7]!) ?? 0) < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      afterScript = await scrape(h);
    }
    const delta = new Map<string, number>();
    for (const name of WATCHED) {
      assert.ok(afterScript.has(name), `${kind} has no ${name}`);
      delta.set(name, afterScript.get(name)! - (before.get(name) ?? 0));
    }
    seen.set(kind, delta);
    totals.set(kind, afterScript);
    await stopServer(h);
  }
  assert.deepEqual(Object.fromEntries(seen.get('etsd')!), Object.fromEntries(seen.get('etcd')!));
  for (const name of ['etcd_server_leader_changes_seen_total', 'etcd_server_proposals_failed_total', 'etcd_server_is_learner', 'etcd_server_quota_backend_bytes', 'etcd_server_has_leader']) {
    assert.equal(totals.get('etsd')!.get(name), totals.get('etcd')!.get(name), name);
  }
  assert.equal(totals.get('etsd')!.get(`etcd_server_version{server_version="${ETCD_API_VERSION}"}`), 1);
  assert.ok([...totals.get('etcd')!.keys()].some((k) => k.startsWith('etcd_server_version{')), 'etcd exports etcd_server_version');
});
