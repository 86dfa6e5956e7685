// The space quota and alarms, driven by real etcdctl against etcd 3.4 and etsd
// with the same small --quota-backend-bytes: the same refusal, the same alarm
// listing, Status's errors, reads and deletes still served, disarm, and /health.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { etsdScript, freePorts, makeTempDir, removeTempDir } from '../integration/etsd-process.js';

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const QUOTA = 2_000_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run { ok: boolean; out: string; err: string }
function ctl(endpoint: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(ETCDCTL, [`--endpoints=${endpoint}`, '--command-timeout=5s', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => resolve({ ok: !err, out: stdout, err: stderr }));
  });
}

async function start(server: 'etcd' | 'etsd', dir: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const [client, peer] = await freePorts(2);
  const args = ['--name', 'q', '--data-dir', join(dir, server), '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`, '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `q=http://127.0.0.1:${peer}`,
    `--quota-backend-bytes=${QUOTA}`];
  const child = server === 'etcd' ? spawn(ETCD, args, { stdio: 'ignore' }) : spawn(process.execPath, [etsdScript(), ...args], { stdio: 'ignore' });
  const endpoint = `127.0.0.1:${client}`;
  for (let i = 0; i < 300; i++) {
    if ((await ctl(endpoint, 'put', 'ready', '1')).ok) return { child, endpoint };
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`${server} did not start`);
}

/** Maintenance.Status errors (etcdctl endpoint status -w json) exactly, with member ids masked. */
async function statusErrors(endpoint: string): Promise<string> {
  const r = await ctl(endpoint, 'endpoint', 'status', '-w', 'json');
  assert.ok(r.ok, r.err);
  const [st] = JSON.parse(r.out) as { Status: { errors?: string[] } }[];
  return JSON.stringify((st!.Status.errors ?? []).map((e) => e.replace(/memberID:\d+/g, 'memberID:<id>')));
}

/** The same script on either server; what a client sees, with member ids masked. */
async function script(endpoint: string): Promise<string[]> {
  const seen: string[] = [];
  const value = 'v'.repeat(100_000);
  let refusedAt = -1;
  for (let i = 0; i < 60 && refusedAt < 0; i++) {
    const r = await ctl(endpoint, 'put', `k${i}`, value);
    if (!r.ok) { refusedAt = i; seen.push(`put refused: ${/Error: (.*)/.exec(r.err)?.[1] ?? r.err}`); }
  }
  assert.ok(refusedAt > 0, 'the quota never refused a put');
  const mask = (s: string) => s.replace(/memberID:\d+/g, 'memberID:<id>').trim();
  seen.push(`alarm list: ${mask((await ctl(endpoint, 'alarm', 'list')).out)}`);
  seen.push(`status errors: ${await statusErrors(endpoint)}`);
  seen.push(`get still served: ${(await ctl(endpoint, 'get', 'k0', '--keys-only')).out.trim()}`);
  seen.push(`delete still served: ${(await ctl(endpoint, 'del', 'k0')).out.trim()}`);
  const again = await ctl(endpoint, 'put', 'small', 'x');
  seen.push(`put while alarmed: ${again.ok ? 'OK' : /Error: (.*)/.exec(again.err)?.[1]}`);
  seen.push(`disarm: ${mask((await ctl(endpoint, 'alarm', 'disarm')).out)}`);
  seen.push(`alarm list after disarm: ${mask((await ctl(endpoint, 'alarm', 'list')).out) || '(none)'}`);
  seen.push(`status errors after disarm: ${await statusErrors(endpoint)}`);
  return seen;
}

test('quota and alarms: etsd answers etcdctl as etcd 3.4 does', { skip: !(existsSync(ETCD) && existsSync(ETCDCTL)) && 'needs etcd 3.4' }, async () => {
  const dir = makeTempDir('quota');
  const results: Record<string, string[]> = {};
  try {
    for (const server of ['etcd', 'etsd'] as const) {
      const s = await start(server, dir);
      try {
        results[server] = await script(s.endpoint);
        if (server === 'etsd') {
          // /health with the alarm raised again: etcd 3.4's answer (etcd's own e2e TestCtlV3Alarm expects this body).
          await ctl(s.endpoint, 'put', 'k-again', 'v'.repeat(100_000));
          const h = await fetch(`http://${s.endpoint}/health`);
          assert.equal(h.status, 503);
          assert.equal(await h.text(), '{"health":"false"}\n');
          assert.equal((await fetch(`http://${s.endpoint}/health?exclude=NOSPACE`)).status, 200);
        }
      } finally {
        s.child.kill('SIGKILL');
      }
    }
    assert.deepEqual(results['etsd'], results['etcd']);
    assert.deepEqual(results['etcd']!.slice(0, 3), [
      'put refused: etcdserver: mvcc: database space exceeded', 'alarm list: memberID:<id> alarm:NOSPACE',
      'status errors: ["memberID:<id> alarm:NOSPACE "]',
    ]);
  } finally {
    removeTempDir(dir);
  }
});
