// JWT auth tokens, differentially: real etcd 3.4 and etsd started with the
// same --auth-token jwt options and the same key files (made by openssl here).
// The same etcdctl --user script must answer the same on both; then tokens
// cross over: one minted by etcd (its gateway's /v3/auth/authenticate) works
// on etsd and one minted by etsd works on etcd, both being at the same auth
// revision; a token signed here with the same key is taken by both while its
// exp is ahead and refused by both once past; another key's token is refused
// by both; a change of the auth store makes the crossed tokens stale on both.
// Then verify-only members (pub-key alone) of each kind: they check tokens
// minted elsewhere and refuse Authenticate with the same error. Last, the
// other method families (PS, ES on P-521, HS) against etcd's own tokens.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../common/ports.js';
import { etsdScript } from '../common/repo.js';
import { loadJwtKeys, type JwtAlg } from '../../src/auth/jwt-options.js';
import { JwtTokens } from '../../src/auth/jwt-tokens.js';

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const dir = mkdtempSync(join(tmpdir(), 'etsd-jwt-compat-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Run { code: number; stdout: string; error: string }

function etcdctl(ep: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(ETCDCTL, [`--endpoints=${ep}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 }, (err, stdout, stderr) => {
        const error = stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n');
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, error });
      });
  });
}

let started = 0;
async function start(kind: 'etcd' | 'etsd', authToken: string): Promise<string> {
  const [cp, pp] = await freePorts(2);
  const client = `http://127.0.0.1:${cp}`;
  const peer = `http://127.0.0.1:${pp}`;
  const args = ['--name', 'n1', '--data-dir', join(dir, `${kind}-${started++}`), '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `n1=${peer}`, '--auth-token', authToken];
  const child = kind === 'etcd'
    ? spawn(ETCD, args, { stdio: 'ignore' })
    : spawn(process.execPath, [etsdScript(), ...args], { stdio: 'ignore' });
  children.push(child);
  const ep = `127.0.0.1:${cp}`;
  const until = Date.now() + 60_000;
  for (;;) {
    if ((await etcdctl(ep, ['get', 'probe'])).code === 0) return ep;
    assert.ok(child.exitCode === null, `${kind} exited with ${child.exitCode}`);
    assert.ok(Date.now() < until, `${kind} never answered`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

interface Answer { status: number; body: Record<string, unknown> }

/** A gateway call, with the token in the Authorization header (etcd's "authorization" metadata). */
function gateway(ep: string, path: string, body: unknown, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token !== undefined) headers['Authorization'] = token;
    const req = http.request(`http://${ep}${path}`, { method: 'POST', headers, agent: false }, (res) => {
      let t = '';
      res.on('data', (d: Buffer) => { t += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(t) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const key64 = (s: string) => Buffer.from(s).toString('base64');

/** A range as the token's user: the values, or the error both servers give (code and text). */
async function rangeAs(ep: string, token: string, key: string): Promise<string> {
  const r = await gateway(ep, '/v3/kv/range', { key: key64(key) }, token);
  if (r.status !== 200) return `${r.status} ${String(r.body['code'])} ${String(r.body['error'])}`;
  const kvs = (r.body['kvs'] as { key: string; value: string }[] | undefined) ?? [];
  return `200 ${kvs.map((kv) => `${Buffer.from(kv.key, 'base64').toString()}=${Buffer.from(kv.value, 'base64').toString()}`).join(',')}`;
}

async function authenticate(ep: string, name: string, password: string): Promise<string> {
  const r = await gateway(ep, '/v3/auth/authenticate', { name, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body['token'] as string;
}

const claimsOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/** Management while auth is off, ending with auth enable: the auth revision is the same on every server after it. */
const SETUP: string[][] = [
  ['user', 'add', 'root:pw'],
  ['user', 'grant-role', 'root', 'root'],
  ['role', 'add', 'r1'],
  ['role', 'grant-permission', 'r1', 'readwrite', 'foo'],
  ['role', 'grant-permission', 'r1', 'read', 'dir/', '--prefix=true'],
  ['user', 'add', 'alice:apw'],
  ['user', 'grant-role', 'alice', 'r1'],
  ['put', 'foo', 'bar'],
  ['put', 'dir/a', '1'],
  ['put', 'secret', 's'],
  ['auth', 'enable'],
];

const ROOT = '--user=root:pw';
const ALICE = '--user=alice:apw';
/** Requests as users with auth on (each etcdctl call authenticates and sends its JWT). */
const USE: string[][] = [
  ['get', 'foo'],
  [ROOT, 'get', 'foo'],
  [ALICE, 'get', 'foo'],
  [ALICE, 'put', 'foo', 'by-alice'],
  [ALICE, 'get', 'foo', '--print-value-only'],
  [ALICE, 'get', 'dir/', '--prefix'],
  [ALICE, 'put', 'dir/b', '2'],
  [ALICE, 'get', 'secret'],
  [ALICE, 'user', 'list'],
  ['--user=alice:wrong', 'get', 'foo'],
  ['--user=nosuch:pw', 'get', 'foo'],
  [ROOT, 'user', 'list'],
  [ROOT, 'role', 'get', 'r1'],
  [ROOT, 'endpoint', 'hashkv'],
  [ALICE, 'endpoint', 'hashkv'],
  [ROOT, 'lease', 'grant', '100'],
  [ALICE, 'txn', '--interactive=false'],
];
const TXN_BODY = 'value("foo") = "by-alice"\n\nput foo v2\n\nput secret no\n';

async function runScript(ep: string, steps: string[][]): Promise<string[]> {
  const out: string[] = [];
  for (const s of steps) {
    const r = s.includes('txn')
      ? await new Promise<Run>((resolve) => {
        const c = execFile(ETCDCTL, [`--endpoints=${ep}`, ...s], { env: { ...process.env, ETCDCTL_API: '3' } }, (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, error: stderr.split('\n').filter((l) => l.startsWith('Error:')).join('\n') }));
        c.stdin!.end(TXN_BODY);
      })
      : await etcdctl(ep, s);
    // Lease ids and endpoints differ between servers; the rest must not.
    const stdout = r.stdout.replace(/lease [0-9a-f]+ granted/, 'lease L granted').replaceAll(ep, 'EP');
    out.push(`$ etcdctl ${s.join(' ')}\n[exit ${r.code}]\n${stdout}${r.error}`);
  }
  return out;
}

function keyFiles(name: string, algorithm: 'RSA' | 'EC'): { priv: string; pub: string } {
  const priv = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  openssl(algorithm === 'RSA'
    ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv]
    : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', priv]);
  openssl(['pkey', '-in', priv, '-pubout', '-out', pub]);
  return { priv, pub };
}

/** A token signed here with a key file, as golang-jwt would for these claims. */
function mint(alg: 'RS256' | 'ES256', privFile: string, claims: string): string {
  const signing = `${b64(`{"alg":"${alg}","typ":"JWT"}`)}.${b64(claims)}`;
  const key = createPrivateKey(readFileSync(privFile));
  const sig = alg === 'ES256' ? sign('sha256', Buffer.from(signing), { key, dsaEncoding: 'ieee-p1363' }) : sign('sha256', Buffer.from(signing), key);
  return `${signing}.${sig.toString('base64url')}`;
}

test('JWT (RS256): etcdctl --user answers the same; tokens cross between etcd and etsd sharing the keys', { skip: !existsSync(ETCD) && 'no /usr/bin/etcd' }, async () => {
  const k = keyFiles('rs', 'RSA');
  const other = keyFiles('rs-other', 'RSA');
  const opts = `jwt,pub-key=${k.pub},priv-key=${k.priv},sign-method=RS256,ttl=5m`;
  const etcd = await start('etcd', opts);
  const etsd = await start('etsd', opts);

  const [wantSetup, gotSetup] = [await runScript(etcd, SETUP), await runScript(etsd, SETUP)];
  const [want, got] = [await runScript(etcd, USE), await runScript(etsd, USE)];
  const all = [...wantSetup, ...want];
  const mine = [...gotSetup, ...got];
  for (let i = 0; i < all.length; i++) assert.equal(mine[i], all[i], `step ${i + 1} differs (etsd, then etcd 3.4)`);
  assert.match(got[2]!, /\[exit 0\]\nfoo\nbar\n/);

  // The tokens: the same claims (the exp aside), each server's accepted by the other.
  const fromEtcd = await authenticate(etcd, 'alice', 'apw');
  const fromEtsd = await authenticate(etsd, 'alice', 'apw');
  const ce = claimsOf(fromEtcd);
  const cs = claimsOf(fromEtsd);
  assert.deepEqual(Object.keys(cs), Object.keys(ce));
  assert.deepEqual([cs['username'], cs['revision']], [ce['username'], ce['revision']]);
  assert.equal(fromEtsd.split('.')[0], fromEtcd.split('.')[0], 'the same JWT header');
  const cross = async (token: string) => ({
    etcd: [await rangeAs(etcd, token, 'foo'), await rangeAs(etcd, token, 'secret')],
    etsd: [await rangeAs(etsd, token, 'foo'), await rangeAs(etsd, token, 'secret')],
  });
  for (const token of [fromEtcd, fromEtsd]) {
    const r = await cross(token);
    assert.deepEqual(r.etsd, r.etcd);
    assert.equal(r.etsd[0], '200 foo=by-alice');
    assert.equal(r.etsd[1], '403 7 etcdserver: permission denied');
  }

  // Signed here: accepted while exp is ahead, refused once past; another key refused.
  const rev = Number(ce['revision']);
  const nowSec = Math.floor(Date.now() / 1000);
  const ahead = mint('RS256', k.priv, `{"exp":${nowSec + 600},"revision":${rev},"username":"root"}`);
  const past = mint('RS256', k.priv, `{"exp":${nowSec - 5},"revision":${rev},"username":"root"}`);
  const forged = mint('RS256', other.priv, `{"exp":${nowSec + 600},"revision":${rev},"username":"root"}`);
  const noExp = mint('RS256', k.priv, `{"revision":${rev},"username":"root"}`);
  const results: Record<string, { etcd: string[]; etsd: string[] }> = {};
  for (const [name, token] of Object.entries({ ahead, past, forged, noExp, garbage: 'not-a-token' })) results[name] = await cross(token);
  for (const [name, r] of Object.entries(results)) assert.deepEqual(r.etsd, r.etcd, name);
  assert.equal(results['ahead']!.etsd[1], '200 secret=s');
  assert.equal(results['past']!.etsd[0], '401 16 etcdserver: invalid auth token');
  assert.equal(results['forged']!.etsd[0], '401 16 etcdserver: invalid auth token');

  // An auth change on both: every token minted before it is stale on both.
  assert.equal((await etcdctl(etcd, [ROOT, 'role', 'add', 'r2'])).code, 0);
  assert.equal((await etcdctl(etsd, [ROOT, 'role', 'add', 'r2'])).code, 0);
  for (const token of [fromEtcd, fromEtsd]) {
    const r = await cross(token);
    assert.deepEqual(r.etsd, r.etcd);
    assert.equal(r.etsd[0], '400 3 etcdserver: revision of auth store is old');
  }
  // A write with a stale token: checked when applied, the same answer.
  const put = async (ep: string) => {
    const r = await gateway(ep, '/v3/kv/put', { key: key64('foo'), value: key64('x') }, fromEtcd);
    return `${r.status} ${String(r.body['error'])}`;
  };
  assert.equal(await put(etsd), await put(etcd));
});

test('JWT (ES256) verify-only members: tokens minted elsewhere are taken, Authenticate is refused alike', { skip: !existsSync(ETCD) && 'no /usr/bin/etcd' }, async () => {
  const k = keyFiles('es', 'EC');
  const full = await start('etcd', `jwt,pub-key=${k.pub},priv-key=${k.priv},sign-method=ES256`);
  const verifyOnly = `jwt,pub-key=${k.pub},sign-method=ES256`;
  const etcd = await start('etcd', verifyOnly);
  const etsd = await start('etsd', verifyOnly);
  for (const ep of [full, etcd, etsd]) await runScript(ep, SETUP);
  const token = await authenticate(full, 'alice', 'apw');
  const r = {
    etcd: [await rangeAs(etcd, token, 'foo'), await rangeAs(etcd, token, 'secret')],
    etsd: [await rangeAs(etsd, token, 'foo'), await rangeAs(etsd, token, 'secret')],
  };
  assert.deepEqual(r.etsd, r.etcd);
  assert.equal(r.etsd[0], '200 foo=bar');
  const [want, got] = [await runScript(etcd, [[ALICE, 'get', 'foo']]), await runScript(etsd, [[ALICE, 'get', 'foo']])];
  assert.equal(got[0], want[0]);
  assert.match(got[0]!, /token signing attempted with verify-only key/);
  // An RS256 token is of another method for these members: refused by both.
  const rs = keyFiles('rs-vo', 'RSA');
  const wrongAlg = mint('RS256', rs.priv, `{"exp":${Math.floor(Date.now() / 1000) + 600},"revision":${Number(claimsOf(token)['revision'])},"username":"root"}`);
  assert.deepEqual([await rangeAs(etsd, wrongAlg, 'foo')], [await rangeAs(etcd, wrongAlg, 'foo')]);
});

test('JWT, the other methods: etcd\'s PS256, ES512 and HS256 tokens verify with etsd\'s code, and etsd\'s with etcd', { skip: !existsSync(ETCD) && 'no /usr/bin/etcd' }, async () => {
  const rsa = keyFiles('ps', 'RSA');
  const p521 = join(dir, 'p521.key');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521', '-out', p521]);
  const secret = join(dir, 'hmac.secret');
  writeFileSync(secret, 'a secret shared by both\n');
  const cases: [JwtAlg, Record<string, string>][] = [
    ['PS256', { 'priv-key': rsa.priv, 'pub-key': rsa.pub }],
    ['ES512', { 'priv-key': p521 }],
    ['HS256', { 'priv-key': secret }],
  ];
  for (const [alg, files] of cases) {
    const opts = new Map(Object.entries({ 'sign-method': alg, ...files }));
    const etcd = await start('etcd', ['jwt', `sign-method=${alg}`, ...Object.entries(files).map(([k, v]) => `${k}=${v}`)].join(','));
    await runScript(etcd, SETUP);
    const fromEtcd = await authenticate(etcd, 'root', 'pw');
    const mine = new JwtTokens(loadJwtKeys(opts));
    const info = mine.verify(fromEtcd);
    assert.ok(info, `${alg}: etcd's token refused by etsd's check`);
    assert.equal(info.username, 'root');
    const fromEtsd = mine.sign('root', info.revision);
    assert.equal(await rangeAs(etcd, fromEtsd, 'secret'), '200 secret=s', `${alg}: etsd's token refused by etcd`);
  }
});
