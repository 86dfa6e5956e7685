// The v3lockpb.Lock and v3electionpb.Election services, called over gRPC.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { messageType } from '../../src/proto/registry.js';
import { EtsdProcess, makeTempDir, removeTempDir } from './etsd-process.js';

const dir = makeTempDir('concurrency');
const server = await EtsdProcess.startReady({ dataDir: dir });
const client = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
after(async () => { client.close(); await server.stop(); removeTempDir(dir); });

const identity = (b: Buffer) => b;
type Obj = Record<string, unknown>;

function call(path: string, reqType: string, resType: string, req: Obj, deadlineMs = 10_000): Promise<Obj> {
  const body = Buffer.from(messageType(reqType).encode(messageType(reqType).fromObject(req)).finish());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + deadlineMs },
      (err, res) => (err ? reject(err) : resolve(messageType(resType).toObject(messageType(resType).decode(res!), { longs: String, bytes: Buffer }) as Obj)));
  });
}

const grant = async (ttl: number) => String((await call('/etcdserverpb.Lease/LeaseGrant', 'etcdserverpb.LeaseGrantRequest', 'etcdserverpb.LeaseGrantResponse', { TTL: ttl })).ID);
const lock = (name: string, lease: string, deadlineMs?: number) =>
  call('/v3lockpb.Lock/Lock', 'v3lockpb.LockRequest', 'v3lockpb.LockResponse', { name: Buffer.from(name), lease: lease }, deadlineMs);
const unlock = (key: Buffer) => call('/v3lockpb.Lock/Unlock', 'v3lockpb.UnlockRequest', 'v3lockpb.UnlockResponse', { key });

test('Lock: the first locker holds; a second waits until Unlock', async () => {
  const l1 = await grant(60);
  const l2 = await grant(60);
  const first = await lock('mylock', l1);
  assert.equal((first.key as Buffer).toString(), `mylock/${BigInt(l1).toString(16)}`);
  let secondDone = false;
  const second = lock('mylock', l2).then((r) => { secondDone = true; return r; });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(secondDone, false, 'second locker must wait');
  await unlock(first.key as Buffer);
  const got = await second;
  assert.equal((got.key as Buffer).toString(), `mylock/${BigInt(l2).toString(16)}`);
  await unlock(got.key as Buffer);
});

test('Lock with an unknown lease answers lease not found', async () => {
  // etcd's v3lock runs clientv3 against itself: the lease error reaches us as Unknown (checked against etcd in test/compat/gateway-cases.txt).
  await assert.rejects(lock('other', '12345'), (e: grpc.ServiceError) => e.code === grpc.status.UNKNOWN && e.details === 'etcdserver: requested lease not found');
});

test('Election: campaign, leader, proclaim, observe, resign', async () => {
  const l1 = await grant(60);
  const camp = await call('/v3electionpb.Election/Campaign', 'v3electionpb.CampaignRequest', 'v3electionpb.CampaignResponse',
    { name: Buffer.from('elec'), lease: l1, value: Buffer.from('alice') });
  const leader = camp.leader as Obj;
  assert.equal((leader.key as Buffer).toString(), `elec/${BigInt(l1).toString(16)}`);

  const leaderOf = () => call('/v3electionpb.Election/Leader', 'v3electionpb.LeaderRequest', 'v3electionpb.LeaderResponse', { name: Buffer.from('elec') });
  assert.equal(((await leaderOf()).kv as Obj).value!.toString(), 'alice');

  // Observe: the current leader, then the proclaimed value.
  const seen: string[] = [];
  const obs = client.makeServerStreamRequest<Buffer, Buffer>('/v3electionpb.Election/Observe', identity, identity,
    Buffer.from(messageType('v3electionpb.LeaderRequest').encode({ name: Buffer.from('elec') }).finish()));
  obs.on('data', (b: Buffer) => seen.push(String((messageType('v3electionpb.LeaderResponse').toObject(messageType('v3electionpb.LeaderResponse').decode(b), { bytes: Buffer }) as Obj & { kv: Obj }).kv.value)));
  obs.on('error', () => undefined);
  await new Promise((r) => setTimeout(r, 300));

  await call('/v3electionpb.Election/Proclaim', 'v3electionpb.ProclaimRequest', 'v3electionpb.ProclaimResponse', { leader, value: Buffer.from('bob') });
  assert.equal(((await leaderOf()).kv as Obj).value!.toString(), 'bob');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(seen, ['alice', 'bob']);
  obs.cancel();

  await call('/v3electionpb.Election/Resign', 'v3electionpb.ResignRequest', 'v3electionpb.ResignResponse', { leader });
  await assert.rejects(leaderOf(), (e: grpc.ServiceError) => e.code === grpc.status.UNKNOWN && e.details === 'election: no leader');
  // A stale leader can no longer proclaim.
  await assert.rejects(
    call('/v3electionpb.Election/Proclaim', 'v3electionpb.ProclaimRequest', 'v3electionpb.ProclaimResponse', { leader, value: Buffer.from('x') }),
    (e: grpc.ServiceError) => e.details === 'election: not leader');
});
