// The JSON gateway on etsd's client port (HTTP/1.1 beside gRPC): KV, leases
// with a keep-alive stream, a watch stream, cluster and maintenance, lock and
// election, the /v3beta/ and /v3alpha/ aliases, and grpc-gateway's error
// bodies (code, message, HTTP status) for bad input. Exact answers of real
// etcd are compared case by case in test/compat/gateway.test.ts; this file
// checks the gateway's own behaviour end to end.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';
import { KvClient, b } from './kv-client.js';
import { HttpStream, b64, dig, post, unb64, type Json } from './gateway-http.js';

const dir = makeTempDir('gateway');
const server = await EtsdProcess.startReady({ dataDir: dir });
const ep = server.endpoint;
after(async () => { await server.stop(); removeTempDir(dir); });

const ok = async (path: string, body: Json | string): Promise<Json> => {
  const r = await post(ep, path, body);
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text}`);
  assert.notEqual(r.json, undefined, `${path}: not JSON: ${r.text}`);
  return r.json!;
};
const num = (v: Json | undefined): number => Number(v ?? 0);

/** An error answer: HTTP status, gRPC code and etcd's words, in grpc-gateway v1's body. */
async function fails(path: string, body: Json | string, status: number, code: number, message: string): Promise<void> {
  const r = await post(ep, path, body);
  assert.equal(r.status, status, `${path}: ${r.text}`);
  assert.deepEqual(r.json, { error: message, message, code }, `${path}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
}

test('put, range, deleterange, txn, compaction', async () => {
  const put1 = await ok('/v3/kv/put', { key: b64('gw/a'), value: b64('1') });
  const rev1 = num(dig(put1, 'header', 'revision'));
  assert.ok(rev1 > 0);
  assert.ok(/^\d+$/.test(String(dig(put1, 'header', 'cluster_id'))), '64-bit ids are JSON strings');
  const put2 = await ok('/v3/kv/put', { key: b64('gw/a'), value: b64('2'), prev_kv: true });
  assert.equal(unb64(String(dig(put2, 'prev_kv', 'value'))), '1');
  await ok('/v3/kv/put', { key: b64('gw/b'), value: b64('3') });

  const one = await ok('/v3/kv/range', { key: b64('gw/a') });
  assert.equal(dig(one, 'count'), '1');
  assert.equal(unb64(String(dig(one, 'kvs', 0, 'value'))), '2');
  assert.equal(dig(one, 'kvs', 0, 'version'), '2');
  assert.equal(num(dig(one, 'kvs', 0, 'create_revision')), rev1);

  const all = await ok('/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0') });
  assert.deepEqual((dig(all, 'kvs') as Json[]).map((kv) => unb64(String(dig(kv, 'key')))), ['gw/a', 'gw/b']);
  const counted = await ok('/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), count_only: true });
  assert.equal(dig(counted, 'count'), '2');
  assert.equal(dig(counted, 'kvs'), undefined, 'empty repeated fields are left out');
  // A revision given as a JSON number or a string, as grpc-gateway accepts both.
  const old = await ok('/v3/kv/range', { key: b64('gw/a'), revision: rev1 });
  assert.equal(unb64(String(dig(old, 'kvs', 0, 'value'))), '1');
  const oldS = await ok('/v3/kv/range', { key: b64('gw/a'), revision: String(rev1) });
  assert.deepEqual(oldS, old);

  const txnOk = await ok('/v3/kv/txn', {
    compare: [{ key: b64('gw/a'), target: 'VALUE', result: 'EQUAL', value: b64('2') }],
    success: [{ request_put: { key: b64('gw/t'), value: b64('yes') } }, { request_range: { key: b64('gw/a') } }],
    failure: [{ request_put: { key: b64('gw/t'), value: b64('no') } }],
  });
  assert.equal(dig(txnOk, 'succeeded'), true);
  assert.equal(unb64(String(dig(txnOk, 'responses', 1, 'response_range', 'kvs', 0, 'value'))), '2');
  const txnNo = await ok('/v3/kv/txn', {
    compare: [{ key: b64('gw/a'), target: 'VERSION', result: 'GREATER', version: '5' }],
    success: [{ request_put: { key: b64('gw/t'), value: b64('yes') } }],
    failure: [{ request_delete_range: { key: b64('gw/b'), prev_kv: true } }],
  });
  assert.equal(dig(txnNo, 'succeeded'), undefined, 'false is left out, as Go omits zero values');
  assert.equal(unb64(String(dig(txnNo, 'responses', 0, 'response_delete_range', 'prev_kvs', 0, 'value'))), '3');

  const del = await ok('/v3/kv/deleterange', { key: b64('gw/'), range_end: b64('gw0'), prev_kv: true });
  assert.equal(dig(del, 'deleted'), '2');
  assert.deepEqual((dig(del, 'prev_kvs') as Json[]).map((kv) => unb64(String(dig(kv, 'key')))), ['gw/a', 'gw/t']);

  const head = num(dig(del, 'header', 'revision'));
  await ok('/v3/kv/compaction', { revision: head - 1, physical: true });
  await fails('/v3/kv/range', { key: b64('gw/a'), revision: rev1 }, 400, 11, 'etcdserver: mvcc: required revision has been compacted');
  await fails('/v3/kv/compaction', { revision: head + 100 }, 400, 11, 'etcdserver: mvcc: required revision is a future revision');
});

test('leases: grant, timetolive with keys, leases, keepalive stream, revoke', async () => {
  const g = await ok('/v3/lease/grant', { TTL: 60 });
  const id = String(dig(g, 'ID'));
  assert.ok(/^\d+$/.test(id));
  assert.equal(dig(g, 'TTL'), '60');
  await ok('/v3/kv/put', { key: b64('gw/leased'), value: b64('x'), lease: id });
  const ttl = await ok('/v3/lease/timetolive', { ID: id, keys: true });
  assert.equal(dig(ttl, 'grantedTTL'), '60');
  assert.ok(num(dig(ttl, 'TTL')) > 0 && num(dig(ttl, 'TTL')) <= 60);
  assert.deepEqual((dig(ttl, 'keys') as Json[]).map((k) => unb64(String(k))), ['gw/leased']);
  const list = await ok('/v3/lease/leases', {});
  assert.ok((dig(list, 'leases') as Json[]).some((l) => dig(l, 'ID') === id));
  // The old /v3/kv/lease/ paths are the same methods.
  assert.equal(dig(await ok('/v3/kv/lease/timetolive', { ID: id }), 'ID'), id);

  const ka = new HttpStream(ep, '/v3/lease/keepalive');
  ka.send({ ID: id });
  const r1 = await ka.waitFor((l) => dig(l, 'result', 'ID') === id, 'first keepalive answer');
  assert.equal(dig(r1, 'result', 'TTL'), '60');
  ka.send({ ID: id });
  await ka.waitFor((_, i) => i === 1, 'second keepalive answer');
  // An unknown lease answers TTL 0 (left out), as etcd's keep-alive does.
  ka.send({ ID: '12345' });
  const r3 = await ka.waitFor((_, i) => i === 2, 'keepalive answer for an unknown lease');
  assert.equal(dig(r3, 'result', 'ID'), '12345');
  assert.equal(dig(r3, 'result', 'TTL'), undefined);
  assert.equal(ka.status, 200);
  // etcd's keep-alive server returns at the client's half-close: the response ends.
  ka.endRequest();
  await ka.waitEnd();
  assert.equal(ka.lines.length, 3);

  await ok('/v3/lease/revoke', { ID: id });
  const gone = await ok('/v3/kv/range', { key: b64('gw/leased') });
  assert.equal(dig(gone, 'count'), undefined);
  await fails('/v3/lease/revoke', { ID: id }, 404, 5, 'etcdserver: requested lease not found');
  const dead = await ok('/v3/lease/timetolive', { ID: id });
  assert.equal(dig(dead, 'TTL'), '-1');
});

test('watch stream: create, events with prev_kv, cancel, half-close keeps it open', async () => {
  const kv = new KvClient(ep);
  const w = new HttpStream(ep, '/v3/watch');
  try {
    w.send({ create_request: { key: b64('gw/w/'), range_end: b64('gw/w0'), prev_kv: true } });
    const created = await w.waitFor((l) => dig(l, 'result', 'created') === true, 'created');
    const watchId = dig(created, 'result', 'watch_id');
    w.send({ create_request: { key: b64('gw/w/only'), watch_id: 7 } });
    await w.waitFor((l) => dig(l, 'result', 'watch_id') === '7' && dig(l, 'result', 'created') === true, 'second watcher created');
    await kv.put({ key: b('gw/w/1'), value: b('a') });
    await kv.put({ key: b('gw/w/1'), value: b('b') });
    await kv.deleteRange({ key: b('gw/w/1') });
    const deleted = await w.waitFor((l) => dig(l, 'result', 'events', 0, 'type') === 'DELETE', 'delete event');
    assert.equal(dig(deleted, 'result', 'watch_id'), watchId);
    assert.equal(unb64(String(dig(deleted, 'result', 'events', 0, 'prev_kv', 'value'))), 'b');
    const evs = w.lines.flatMap((l) => (dig(l, 'result', 'events') as Json[] | undefined) ?? []);
    // PUT is enum value 0: Go leaves it out of the event.
    assert.deepEqual(evs.map((e) => `${String(dig(e, 'type') ?? 'PUT')} ${unb64(String(dig(e, 'kv', 'key')))}`),
      ['PUT gw/w/1', 'PUT gw/w/1', 'DELETE gw/w/1']);
    assert.equal(unb64(String(dig(evs[1]!, 'prev_kv', 'value'))), 'a');

    w.send({ cancel_request: { watch_id: 7 } });
    await w.waitFor((l) => dig(l, 'result', 'watch_id') === '7' && dig(l, 'result', 'canceled') === true, 'cancel answer');
    // The end of the request body half-closes the call; the watch goes on, as in etcd.
    w.endRequest();
    await kv.put({ key: b('gw/w/only'), value: b('c') });
    await kv.put({ key: b('gw/w/2'), value: b('d') });
    const after2 = await w.waitFor((l) => unb64(String(dig(l, 'result', 'events', 0, 'kv', 'key') ?? '')) === 'gw/w/2', 'event after half-close');
    assert.equal(dig(after2, 'result', 'watch_id'), watchId);
    assert.ok(!w.lines.some((l) => dig(l, 'result', 'watch_id') === '7' && dig(l, 'result', 'events') !== undefined),
      'no events for the cancelled watcher');
    assert.equal(w.ended, false);
  } finally {
    w.destroy();
    kv.close();
  }
});

test('cluster member list and maintenance status', async () => {
  const ml = await ok('/v3/cluster/member/list', {});
  const members = dig(ml, 'members') as Json[];
  assert.equal(members.length, 1);
  assert.equal(dig(members[0]!, 'name'), 'n1');
  assert.deepEqual(dig(members[0]!, 'clientURLs'), [`http://${ep}`]);
  assert.equal(dig(members[0]!, 'ID'), dig(ml, 'header', 'member_id'));
  const st = await ok('/v3/maintenance/status', {});
  assert.equal(dig(st, 'leader'), dig(st, 'header', 'member_id'));
  assert.ok(num(dig(st, 'dbSize')) > 0);
  assert.ok(/^3\.\d+\.\d+$/.test(String(dig(st, 'version'))));
  const alarms = await ok('/v3/maintenance/alarm', { action: 'GET' });
  assert.equal(dig(alarms, 'alarms'), undefined);
});

test('lock and election', async () => {
  const lease = String(dig(await ok('/v3/lease/grant', { TTL: 30 }), 'ID'));
  const locked = await ok('/v3/lock/lock', { name: b64('gwlock'), lease });
  const lockKey = unb64(String(dig(locked, 'key')));
  assert.equal(lockKey, `gwlock/${BigInt(lease).toString(16)}`);
  await ok('/v3/lock/unlock', { key: dig(locked, 'key')! });
  const after = await ok('/v3/kv/range', { key: dig(locked, 'key')! });
  assert.equal(dig(after, 'count'), undefined, 'unlock deletes the lock key');

  const camp = await ok('/v3/election/campaign', { name: b64('gwelect'), lease, value: b64('first') });
  const leader = dig(camp, 'leader') as Json;
  assert.equal(unb64(String(dig(leader, 'name'))), 'gwelect');
  const obs = new HttpStream(ep, '/v3/election/observe');
  try {
    obs.send({ name: b64('gwelect') });
    obs.endRequest();
    await obs.waitFor((l) => unb64(String(dig(l, 'result', 'kv', 'value') ?? '')) === 'first', 'observe: first value');
    await ok('/v3/election/proclaim', { leader, value: b64('second') });
    await obs.waitFor((l) => unb64(String(dig(l, 'result', 'kv', 'value') ?? '')) === 'second', 'observe: proclaimed value');
    const ld = await ok('/v3/election/leader', { name: b64('gwelect') });
    assert.equal(unb64(String(dig(ld, 'kv', 'value'))), 'second');
    await ok('/v3/election/resign', { leader });
    // etcd returns concurrency.ErrElectionNoLeader as a plain error: gRPC Unknown, HTTP 500.
    await fails('/v3/election/leader', { name: b64('gwelect') }, 500, 2, 'election: no leader');
  } finally {
    obs.destroy();
  }
});

test('/v3beta/ and /v3alpha/ are the same routes', async () => {
  await ok('/v3alpha/kv/put', { key: b64('gw/alias'), value: b64('old') });
  const r = await ok('/v3beta/kv/range', { key: b64('gw/alias') });
  assert.equal(unb64(String(dig(r, 'kvs', 0, 'value'))), 'old');
  const w = new HttpStream(ep, '/v3alpha/watch');
  try {
    w.send({ create_request: { key: b64('gw/alias') } });
    await w.waitFor((l) => dig(l, 'result', 'created') === true, 'created on /v3alpha/watch');
  } finally {
    w.destroy();
  }
});

test('error bodies for bad input', async () => {
  await fails('/v3/kv/put', '{"key":', 400, 3, 'unexpected EOF');
  await fails('/v3/kv/put', '{"key" "x"}', 400, 3, "invalid character '\"' after object key");
  await fails('/v3/kv/range', { key: 'not base64!' }, 400, 3, 'illegal base64 data at input byte 3');
  await fails('/v3/kv/put', { value: b64('v') }, 400, 3, 'etcdserver: key is not provided');
  // etcd 3.4.23 panics on this one (nil sorter); etsd refuses it with etcd's invalid-sort-option error.
  await fails('/v3/kv/range', { key: b64('k'), sort_target: 7 }, 400, 3, 'etcdserver: invalid sort option');
  await fails('/v3/lease/timetolive', { ID: 'abc' }, 400, 3, 'invalid character \'a\' looking for beginning of value');
  await fails('/v3/kv/txn', { compare: [{ key: b64('k'), target: 'VALUE', result: 'EQUAL', value: b64('v') }], success: [
    { request_put: { key: b64('dup') } }, { request_put: { key: b64('dup') } }] }, 400, 3, 'etcdserver: duplicate key given in txn request');
  await fails('/v3/lease/revoke', { ID: '999' }, 404, 5, 'etcdserver: requested lease not found');
  // Unknown paths and methods: Go's plain-text answers from grpc-gateway's mux.
  const nf = await post(ep, '/v3/kv/nothing', {});
  assert.equal(nf.status, 404);
  assert.equal(nf.text, 'Not Found\n');
  const get = await new Promise<number>((resolve, reject) => {
    const [host, port] = ep.split(':');
    import('node:http').then(({ default: http }) => {
      http.get({ host, port: Number(port), path: '/v3/kv/range' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    }, reject);
  });
  assert.equal(get, 405);
  // A watch create with an empty range answers on the stream, not as an HTTP error.
  const w = new HttpStream(ep, '/v3/watch');
  try {
    w.send({ create_request: { key: b64('z'), range_end: b64('a') } });
    const r = await w.waitFor((l) => dig(l, 'result', 'canceled') === true, 'canceled create');
    assert.equal(dig(r, 'result', 'cancel_reason'), 'mvcc: watcher range is empty');
    assert.equal(dig(r, 'result', 'watch_id'), '-1');
  } finally {
    w.destroy();
  }
});
