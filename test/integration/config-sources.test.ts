// Starting like etcd: a YAML config file, ETCD_* variables, --listen-metrics-urls,
// and refusals by name; the conflict rule checked beside real etcd 3.4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { etsdScript, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';

const ETCD = '/usr/bin/etcd';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function httpGet(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return null; // not listening yet: the caller polls
  }
}

/** Polls /health on the client port until it answers 200 (30 s at most); fails with the log tail. */
async function waitHealthy(port: number, log: () => string): Promise<{ status: number; body: string }> {
  let health = null;
  for (let i = 0; i < 300 && !(health?.status === 200); i++) { await sleep(100); health = await httpGet(`http://127.0.0.1:${port}/health`); }
  assert.equal(health?.status, 200, log().slice(-2000));
  return health!;
}

/** Runs a command expected to stop at start; its exit code and stderr. */
function runToExit(cmd: string, args: string[], env: Record<string, string>): { code: number | null; stderr: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

test('a member started from a YAML config file and ETCD_CONFIG_FILE serves, with metrics on their own port', async () => {
  const dir = makeTempDir('configfile');
  const [client, peer, metrics] = await freePorts(3);
  const file = join(dir, 'etcd.conf.yml');
  writeFileSync(file, [
    'name: from-file',
    `data-dir: ${join(dir, 'data')}`,
    `listen-client-urls: http://127.0.0.1:${client}`,
    `advertise-client-urls: http://127.0.0.1:${client}`,
    `listen-peer-urls: http://127.0.0.1:${peer}`,
    `initial-advertise-peer-urls: http://127.0.0.1:${peer}`,
    `initial-cluster: from-file=http://127.0.0.1:${peer}`,
    "initial-cluster-state: 'new'",
    `listen-metrics-urls: http://127.0.0.1:${metrics}`,
    'enable-v2: false', 'logger: zap', 'log-outputs: [stderr]', 'quota-backend-bytes: 0', 'wal-dir:',
    'client-transport-security:', '  client-cert-auth: false', '  auto-tls: false',
  ].join('\n'));
  const child = spawn(process.execPath, [etsdScript()], { env: { ...process.env, ETCD_CONFIG_FILE: file }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  try {
    const health = await waitHealthy(client, () => stderr);
    assert.match(health.body, /"health":"true"/);
    const m = await httpGet(`http://127.0.0.1:${metrics}/metrics`);
    assert.equal(m?.status, 200);
    assert.match(m!.body, /etcd_server_has_leader 1/);
    assert.equal((await httpGet(`http://127.0.0.1:${metrics}/version`))?.status, 404, 'the metrics port serves only metrics and health');
    assert.deepEqual(await httpGet(`http://127.0.0.1:${metrics}/livez`), { status: 200, body: 'ok\n' });
    assert.deepEqual(await httpGet(`http://127.0.0.1:${client}/readyz?verbose`),
      { status: 200, body: '[+]data_corruption ok\n[+]linearizable_read ok\nok\n' });
    assert.match(stderr, /loaded server configuration, other configuration command line flags and environment variables will be ignored if provided/);
  } finally {
    child.kill('SIGKILL');
    removeTempDir(dir);
  }
});

test('ETCD_* variables set flags; an unknown one is a warning', async () => {
  const dir = makeTempDir('envvars');
  const [client, peer] = await freePorts(2);
  const child = spawn(process.execPath, [etsdScript()], {
    env: {
      ...process.env, ETCD_NAME: 'env-member', ETCD_DATA_DIR: join(dir, 'data'),
      ETCD_LISTEN_CLIENT_URLS: `http://127.0.0.1:${client}`, ETCD_ADVERTISE_CLIENT_URLS: `http://127.0.0.1:${client}`,
      ETCD_LISTEN_PEER_URLS: `http://127.0.0.1:${peer}`, ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://127.0.0.1:${peer}`,
      ETCD_INITIAL_CLUSTER: `env-member=http://127.0.0.1:${peer}`, ETCD_NOT_A_FLAG: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  try {
    const health = await waitHealthy(client, () => stderr);
    assert.match(stderr, /recognized and used environment variable ETCD_NAME=env-member/);
    assert.match(stderr, /unrecognized environment variable ETCD_NOT_A_FLAG=1/);
  } finally {
    child.kill('SIGKILL');
    removeTempDir(dir);
  }
});

test('a flag shadowing an ETCD_* variable stops etsd as it stops etcd 3.4, with the same words', { skip: !existsSync(ETCD) && 'needs etcd 3.4' }, () => {
  const dir = makeTempDir('conflict');
  try {
    const want = 'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)';
    const etcd = runToExit(ETCD, ['--name', 'a', '--data-dir', join(dir, 'etcd')], { ETCD_NAME: 'b' });
    assert.notEqual(etcd.code, 0);
    assert.ok(etcd.stderr.includes(want), etcd.stderr);
    const etsd = runToExit(process.execPath, [etsdScript(), '--name', 'a', '--data-dir', join(dir, 'etsd')], { ETCD_NAME: 'b' });
    assert.equal(etsd.code, 2);
    assert.ok(etsd.stderr.includes(want), etsd.stderr);
  } finally {
    removeTempDir(dir);
  }
});

test('a flag etsd cannot honour stops the start, naming the flag and why', () => {
  const r = runToExit(process.execPath, [etsdScript(), '--unsafe-no-fsync'], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--unsafe-no-fsync=true is not supported by etsd: etsd always fsyncs/);
});
