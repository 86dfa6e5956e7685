import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listServices, messageType, protoRoot } from '../../src/proto/registry.js';

const EXPECTED: Record<string, { count: number; streams: Record<string, [boolean, boolean]> }> = {
  'etcdserverpb.KV': { count: 5, streams: {} },
  'etcdserverpb.Watch': { count: 1, streams: { Watch: [true, true] } },
  'etcdserverpb.Lease': { count: 5, streams: { LeaseKeepAlive: [true, true] } },
  'etcdserverpb.Cluster': { count: 5, streams: {} },
  'etcdserverpb.Maintenance': { count: 8, streams: { Snapshot: [false, true] } },
  'etcdserverpb.Auth': { count: 17, streams: {} },
  'v3lockpb.Lock': { count: 2, streams: {} },
  'v3electionpb.Election': { count: 5, streams: { Observe: [false, true] } },
};

test('listServices covers every service with the right method counts and stream flags', () => {
  const services = listServices();
  assert.deepEqual(services.map((s) => s.fullName).sort(), Object.keys(EXPECTED).sort());
  let total = 0;
  for (const svc of services) {
    const exp = EXPECTED[svc.fullName]!;
    assert.equal(svc.methods.length, exp.count, svc.fullName);
    total += svc.methods.length;
    for (const m of svc.methods) {
      assert.equal(m.path, `/${svc.fullName}/${m.name}`);
      const [reqStream, resStream] = exp.streams[m.name] ?? [false, false];
      assert.equal(m.requestStream, reqStream, `${m.path} requestStream`);
      assert.equal(m.responseStream, resStream, `${m.path} responseStream`);
      // Both types resolve to real messages.
      assert.ok(messageType(m.requestType), m.requestType);
      assert.ok(messageType(m.responseType), m.responseType);
      assert.ok(!m.requestType.startsWith('.'));
    }
  }
  assert.equal(total, 48);
});

test('method names and types match etcd', () => {
  const byPath = new Map(listServices().flatMap((s) => s.methods.map((m) => [m.path, m] as const)));
  const kv = ['Range', 'Put', 'DeleteRange', 'Txn', 'Compact'].map((n) => `/etcdserverpb.KV/${n}`);
  for (const p of kv) assert.ok(byPath.has(p), p);
  assert.equal(byPath.get('/etcdserverpb.KV/Compact')!.requestType, 'etcdserverpb.CompactionRequest');
  assert.equal(byPath.get('/etcdserverpb.Auth/UserChangePassword')!.responseType,
    'etcdserverpb.AuthUserChangePasswordResponse');
  assert.equal(byPath.get('/etcdserverpb.Maintenance/Downgrade')!.requestType, 'etcdserverpb.DowngradeRequest');
  assert.equal(byPath.get('/v3electionpb.Election/Observe')!.requestType, 'v3electionpb.LeaderRequest');
  assert.equal(byPath.get('/v3electionpb.Election/Leader')!.responseType, 'v3electionpb.LeaderResponse');
  assert.equal(byPath.get('/v3lockpb.Lock/Unlock')!.responseType, 'v3lockpb.UnlockResponse');
});

test('spot-check field numbers and enums', () => {
  const cmp = messageType('etcdserverpb.Compare');
  assert.equal(cmp.fields['rangeEnd']!.id, 64);
  assert.deepEqual(cmp.oneofs['targetUnion']!.fieldsArray.map((f) => [f.name, f.id]),
    [['version', 4], ['createRevision', 5], ['modRevision', 6], ['value', 7], ['lease', 8]]);
  assert.equal(messageType('etcdserverpb.WatchResponse').fields['events']!.id, 11);
  assert.equal(messageType('mvccpb.KeyValue').fields['lease']!.type, 'int64');
  assert.equal(messageType('etcdserverpb.ResponseHeader').fields['clusterId']!.type, 'uint64');
  const alarm = protoRoot().lookupEnum('etcdserverpb.AlarmType');
  assert.deepEqual({ ...alarm.values }, { NONE: 0, NOSPACE: 1, CORRUPT: 2 });
  const perm = protoRoot().lookupEnum('authpb.Permission.Type');
  assert.deepEqual({ ...perm.values }, { READ: 0, WRITE: 1, READWRITE: 2 });
  assert.equal(messageType('etcdserverpb.LeaseGrantRequest').fields['TTL']!.id, 1);
});

test('protoRoot is cached', () => {
  assert.equal(protoRoot(), protoRoot());
  assert.equal(listServices(), listServices());
});
