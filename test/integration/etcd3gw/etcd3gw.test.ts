// Debian's python3-etcd3gw 2.0.0 (an HTTP/JSON gateway client, OpenStack's)
// runs its own functional test suite against etsd through the gateway. The
// runner (run_etcd3gw_tests.py) points the suite at our port; every test must
// pass. etcd3gw 2.0.0 calls /v3alpha/ paths, which etsd serves as aliases.
// Skipped, with the reason, only when the Debian packages are not installed
// (.ci/run installs python3-etcd3gw and python3-oslotest).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { EtsdProcess, makeTempDir, removeTempDir, repoRoot } from '../etsd-process.js';

const PYTHON = '/usr/bin/python3';
const RUN_TIMEOUT_MS = 300_000;

function missingPackages(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import etcd3gw, oslotest, etcd3gw.tests.test_etcd3gw'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return `${PYTHON} cannot run (${r.error.message})`;
  if (r.status !== 0) return `python3-etcd3gw / python3-oslotest are not installed (apt-get install python3-etcd3gw python3-oslotest): ${r.stderr.trim().split('\n').pop() ?? ''}`;
  return null;
}

const missing = missingPackages();

interface Summary { run: number; passed: number; failures: string[]; errors: string[]; skipped: string[] }

test('etcd3gw 2.0.0 functional tests pass against etsd', { skip: missing ?? false, timeout: RUN_TIMEOUT_MS + 60_000 }, async () => {
  const dir = makeTempDir('etcd3gw');
  const server = await EtsdProcess.startReady({ dataDir: dir });
  after(async () => { await server.stop(); removeTempDir(dir); });
  const script = join(repoRoot(), 'test', 'integration', 'etcd3gw', 'run_etcd3gw_tests.py');
  const child = spawn(PYTHON, [script, String(server.opts.clientPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL'); }, RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  const line = out.split('\n').find((l) => l.startsWith('ETCD3GW-SUMMARY '));
  assert.ok(line !== undefined, `no summary from the etcd3gw runner (exit ${code}); output:\n${out}`);
  const s = JSON.parse(line.slice('ETCD3GW-SUMMARY '.length)) as Summary;
  console.log(`etcd3gw: ${s.passed}/${s.run} passed`);
  assert.deepEqual({ failures: s.failures, errors: s.errors, skipped: s.skipped }, { failures: [], errors: [], skipped: [] }, out);
  assert.ok(s.run >= 20, `only ${s.run} etcd3gw tests ran:\n${out}`);
  assert.equal(s.passed, s.run);
});
