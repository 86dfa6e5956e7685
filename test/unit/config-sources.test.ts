// etcd 3.4's configuration sources: config file, ETCD_* variables, flags it
// accepts, ignores or etsd refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseArgs } from '../../src/common/config.js';
import { flagToEnv, resolveArgs } from '../../src/common/config-sources.js';

const noFile = (): string => { throw new Error('no file expected'); };
const files = (m: Record<string, string>) => (p: string): string => {
  const t = m[p];
  if (t === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
  return t;
};

test('flagToEnv spells variables as etcd does', () => {
  assert.equal(flagToEnv('initial-cluster-token'), 'ETCD_INITIAL_CLUSTER_TOKEN');
  assert.equal(flagToEnv('name'), 'ETCD_NAME');
});

test('ETCD_* variables fill the flags the command line does not set', () => {
  const r = resolveArgs(['--name', 'a', '--initial-cluster', 'a=http://127.0.0.1:2380'], {
    ETCD_SNAPSHOT_COUNT: '77', ETCD_PRE_VOTE: 'false', PATH: '/usr/bin',
  }, noFile);
  const cfg = parseArgs(r.argv).config;
  assert.equal(cfg.name, 'a');
  assert.equal(cfg.snapshotCount, 77);
  assert.equal(cfg.preVote, false);
  assert.ok(r.notes.some((n) => n.msg === 'recognized and used environment variable ETCD_SNAPSHOT_COUNT=77'));
});

test('a variable shadowed by a flag given on the command line is fatal, with etcd\'s message', () => {
  assert.throws(() => resolveArgs(['--name=a'], { ETCD_NAME: 'b' }, noFile), (err: unknown) => err instanceof ConfigError &&
    err.message === 'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)');
});

test('an ETCD_* variable naming no flag is a warning, not an error', () => {
  const r = resolveArgs([], { ETCD_NO_SUCH_THING: 'x' }, noFile);
  assert.deepEqual(r.notes, [{ level: 'warn', msg: 'unrecognized environment variable ETCD_NO_SUCH_THING=x' }]);
});

test('a config file replaces flags and variables; its TLS sections and lists become flags', () => {
  const yaml = [
    'name: infra1', 'data-dir: /tmp/x', 'snapshot-count: 500', 'heartbeat-interval: 50', 'election-timeout: 500',
    "listen-client-urls: http://127.0.0.1:12379", "advertise-client-urls: http://127.0.0.1:12379",
    "initial-cluster: infra1=http://127.0.0.1:12380", "initial-advertise-peer-urls: http://127.0.0.1:12380",
    "listen-peer-urls: http://127.0.0.1:12380", "initial-cluster-state: 'new'", 'wal-dir:', 'enable-v2: false',
    'log-outputs: [stderr]', 'logger: zap', 'quota-backend-bytes: 0', 'max-snapshots: 5', 'discovery:', "proxy: 'off'",
    'client-transport-security:', '  cert-file:', '  key-file:', '  client-cert-auth: false', '  auto-tls: false',
    'experimental-watch-progress-notify-interval: 5000000000', 'some-future-key: 1',
  ].join('\n');
  const r = resolveArgs(['--config-file', '/etc/etcd.yml', '--name', 'ignored'], { ETCD_SNAPSHOT_COUNT: '9' }, files({ '/etc/etcd.yml': yaml }));
  assert.equal(r.configFile, '/etc/etcd.yml');
  const cfg = parseArgs(r.argv).config;
  assert.equal(cfg.name, 'infra1');
  assert.equal(cfg.snapshotCount, 500);
  assert.equal(cfg.heartbeatIntervalMs, 50);
  assert.equal(cfg.watchProgressNotifyIntervalMs, 5000);
  assert.deepEqual(cfg.logOutputs, ['stderr']);
  assert.deepEqual(cfg.listenClientUrls, ['http://127.0.0.1:12379']);
  assert.ok(r.notes.some((n) => n.level === 'warn' && n.msg.includes('--name')));
  assert.ok(r.notes.some((n) => n.level === 'warn' && n.msg.includes('some-future-key')));
});

test('ETCD_CONFIG_FILE names the config file when the flag is absent', () => {
  const r = resolveArgs([], { ETCD_CONFIG_FILE: '/c.yml' }, files({ '/c.yml': 'name: fromfile\ninitial-cluster: fromfile=http://127.0.0.1:2380\n' }));
  assert.equal(parseArgs(r.argv).config.name, 'fromfile');
});

test('a missing or malformed config file stops the start', () => {
  assert.throws(() => resolveArgs(['--config-file=/nope.yml'], {}, files({})), /open \/nope\.yml/);
  assert.throws(() => resolveArgs(['--config-file=/bad.yml'], {}, files({ '/bad.yml': 'name: [unclosed' })), ConfigError);
});

test('security and durability flags etsd cannot honour yet are refused by name', () => {
  for (const [arg, re] of [
    ['--unsafe-no-fsync', /--unsafe-no-fsync=true is not supported by etsd: etsd always fsyncs/],
    ['--enable-v2=true', /--enable-v2=true is not supported by etsd: the v2 API is not served/],
    ['--discovery=https://discovery.etcd.io/x', /discovery is not supported/],
  ] as const) {
    assert.throws(() => parseArgs([arg]), (err: unknown) => err instanceof ConfigError && re.test(err.message), arg);
  }
});

test('etcd\'s gRPC proxy subcommand is refused by name', () => {
  assert.throws(() => parseArgs(['grpc-proxy', 'start']), /"etcd grpc-proxy" \(etcd's gRPC proxy\) is not implemented by etsd/);
});

test('flags accepted with their meaning for etsd, and flags etcd itself ignores', () => {
  const p = parseArgs(['--logger=zap', '--max-snapshots=5', '--enable-v2=false', '--quota-backend-bytes=0', '--peer-heartbeat-interval', '--debug',
    '--max-concurrent-streams=100', '--listen-metrics-urls=http://127.0.0.1:12381', '--grpc-keepalive-interval=2h']);
  assert.equal(p.config.logLevel, 'debug');
  assert.equal(p.config.maxConcurrentStreams, 100);
  assert.deepEqual(p.config.listenMetricsUrls, ['http://127.0.0.1:12381']);
  assert.deepEqual(p.warnings, ['flag "-peer-heartbeat-interval" is no longer supported - ignoring.']);
  assert.throws(() => parseArgs(['--logger=glog']), /valid values are "zap" and "capnslog"/);
  assert.throws(() => parseArgs(['--grpc-keepalive-interval=soon']), /invalid value "soon" for flag -grpc-keepalive-interval/);
  assert.throws(() => parseArgs(['--no-such-flag']), /flag provided but not defined: -no-such-flag/);
});
