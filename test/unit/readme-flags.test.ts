// The README's table of etcd flags is the one the code acts on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { etcdFlagTable } from '../../src/common/etcd-flags.js';
import { kindOf } from '../../src/common/config.js';
import { repoRoot } from '../common/repo.js';

test('README flag table matches src/common/etcd-flags.ts (regenerate with node scripts/flag-table.mjs)', () => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const m = /<!-- etcd-flags:begin -->\n([\s\S]*?)\n<!-- etcd-flags:end -->/.exec(readme);
  assert.ok(m, 'README.md has the etcd-flags markers');
  assert.equal(m[1], etcdFlagTable());
});

// Every flag etcd 3.4.23's etcdmain registers (its config.go), so none reaches "flag provided but not defined".
const ETCD_34_FLAGS = `config-file data-dir wal-dir listen-peer-urls listen-client-urls listen-metrics-urls max-snapshots max-wals name
snapshot-count heartbeat-interval election-timeout initial-election-tick-advance quota-backend-bytes backend-batch-interval
backend-batch-limit max-txn-ops max-request-bytes grpc-keepalive-min-time grpc-keepalive-interval grpc-keepalive-timeout
max-concurrent-streams initial-advertise-peer-urls advertise-client-urls discovery discovery-fallback discovery-proxy discovery-srv
discovery-srv-name initial-cluster initial-cluster-token initial-cluster-state strict-reconfig-check enable-v2 pre-vote proxy
proxy-failure-wait proxy-refresh-interval proxy-dial-timeout proxy-write-timeout proxy-read-timeout cert-file key-file
client-cert-auth client-crl-file client-cert-allowed-hostname trusted-ca-file auto-tls peer-cert-file peer-key-file
peer-client-cert-auth peer-trusted-ca-file peer-auto-tls peer-crl-file peer-cert-allowed-cn peer-cert-allowed-hostname
experimental-peer-skip-client-san-verification cipher-suites cors host-whitelist logger log-output log-outputs debug log-level
log-package-levels version auto-compaction-retention auto-compaction-mode enable-pprof metrics auth-token bcrypt-cost
auth-token-ttl enable-grpc-gateway experimental-initial-corrupt-check experimental-corrupt-check-time experimental-enable-v2v3
experimental-backend-bbolt-freelist-type experimental-enable-lease-checkpoint experimental-enable-lease-checkpoint-persist
experimental-compaction-batch-limit experimental-watch-progress-notify-interval experimental-warning-apply-duration
unsafe-no-fsync force-new-cluster`.split(/\s+/);

test('every etcd 3.4 flag is known to etsd (implemented, accepted or refused by name)', () => {
  const unknown = ETCD_34_FLAGS.filter((f) => kindOf(f) === undefined);
  assert.deepEqual(unknown, []);
});
