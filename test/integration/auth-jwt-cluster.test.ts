// JWT tokens in a three-member cluster (every member given the same key
// files): Authenticate on any member, leader or follower, gives a token every
// member takes; the token carries the auth revision, so an auth change makes
// it stale everywhere; unlike a simple token it outlives a restart of the
// member that minted it (it is checked by its signature, not looked up).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { EtsdProcess, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';
import { RawClient, authenticateRequest, tokenOf } from './auth-client.js';
import { b, rangeReq } from './kv-client.js';
import * as codec from '../../src/proto/kv-codec.js';

const NAMES = ['j1', 'j2', 'j3'];
const ports = await freePorts(6);
const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
const initialCluster = NAMES.map((n, i) => `${n}=${peer(i)}`).join(',');
const dirs = NAMES.map((n) => makeTempDir(`jwtcluster-${n}`));
const keyDir = makeTempDir('jwtcluster-keys');
const procs: (EtsdProcess | null)[] = [null, null, null];
const raws: RawClient[] = [];

after(async () => {
  for (const r of raws) r.close();
  for (const p of procs) await p?.stop();
  for (const d of [...dirs, keyDir]) removeTempDir(d);
});

const priv = join(keyDir, 'jwt.key');
const pub = join(keyDir, 'jwt.pub');
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', priv], { stdio: ['ignore', 'ignore', 'pipe'] });
execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: ['ignore', 'ignore', 'pipe'] });
const AUTH_TOKEN = `jwt,pub-key=${pub},priv-key=${priv},sign-method=ES256,ttl=10m`;

async function start(i: number): Promise<void> {
  procs[i] = await EtsdProcess.start({
    dataDir: dirs[i]!, name: NAMES[i], clientPort: ports[i], peerPort: ports[3 + i],
    extraArgs: ['--shards', '1', '--initial-cluster', initialCluster, '--auth-token', AUTH_TOKEN],
  });
}

function ok(i: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', [`--endpoints=${procs[i]!.endpoint}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 }, (err, out, errOut) => {
        if (err) reject(new Error(`etcdctl ${args.join(' ')} on ${NAMES[i]}: ${errOut}`));
        else resolve(out);
      });
  });
}

const client = (i: number): RawClient => {
  const r = new RawClient(procs[i]!.endpoint);
  raws.push(r);
  return r;
};
const rangeKey = (k: string) => codec.encodeRangeRequest(rangeReq({ key: b(k), serializable: true }));
const valueOn = async (r: RawClient, token: string, k: string) => codec.decodeRangeResponse(await r.call('/etcdserverpb.KV/Range', rangeKey(k), token)).kvs[0]?.value.toString();
const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { username: string; revision: number; exp: number };

test('JWT in a cluster: minted on any member, taken by all, stale after an auth change, valid after a restart', { timeout: 300_000 }, async () => {
  await Promise.all([0, 1, 2].map(start));
  await Promise.all(procs.map((p) => p!.waitReady()));
  await ok(0, ['user', 'add', 'root:pw']);
  await ok(0, ['user', 'grant-role', 'root', 'root']);
  await ok(0, ['put', 'k', 'v']);
  await ok(0, ['auth', 'enable']);

  const tokens: string[] = [];
  for (let i = 0; i < 3; i++) tokens.push(tokenOf(await client(i).call('/etcdserverpb.Auth/Authenticate', authenticateRequest('root', 'pw'))));
  const revs = tokens.map((t) => claims(t).revision);
  assert.deepEqual(tokens.map((t) => claims(t).username), ['root', 'root', 'root']);
  assert.equal(new Set(revs).size, 1, `one auth revision: ${revs.join(',')}`);
  // Every token on every member (a read served by that member alone).
  const readers = [0, 1, 2].map(client);
  for (const t of tokens) for (const r of readers) assert.equal(await valueOn(r, t, 'k'), 'v');

  // A restart: the member forgets nothing a JWT needs.
  await procs[1]!.stop();
  await start(1);
  // (Its readiness probe has no token, so auth refuses it: poll with the old token instead.)
  const restarted = client(1);
  const until = Date.now() + 60_000;
  let got: string | undefined;
  while (got === undefined) {
    got = await valueOn(restarted, tokens[1]!, 'k').catch((e: unknown) => {
      if (Date.now() > until) throw e;
      return undefined;
    });
    if (got === undefined) await new Promise((res) => setTimeout(res, 250));
  }
  assert.equal(got, 'v');

  // An auth change: every token minted before it is stale on every member.
  await client(0).call('/etcdserverpb.Auth/RoleAdd', Buffer.concat([Buffer.from([0x0a, 2]), Buffer.from('r2')]), tokens[0]);
  for (let i = 0; i < 3; i++) {
    const r = client(i);
    // The follower may apply the change a moment later: wait for the refusal, then check its words.
    const until = Date.now() + 30_000;
    let err: unknown;
    for (;;) {
      err = await r.call('/etcdserverpb.KV/Range', rangeKey('k'), tokens[i]).then(() => null, (e: unknown) => e);
      if (err !== null || Date.now() > until) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(err instanceof Error && 'code' in err, `member ${NAMES[i]} still takes the old token`);
    assert.equal((err as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.message, /etcdserver: revision of auth store is old/);
  }
});
