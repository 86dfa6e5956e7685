// `etsd gateway start` (etcd's L4 gateway, etcd's e2e TestGateway): etcdctl
// through the gateway reaches the member; an endpoint that refuses the dial
// is deactivated and the next one serves; the gateway refuses an endpoint
// that is its own listen address, with etcd's message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { EtsdProcess, etsdScript, freePorts, makeTempDir, removeTempDir } from './etsd-process.js';

const ETCDCTL = '/usr/bin/etcdctl';
const procs: EtsdProcess[] = [];
const children: ChildProcess[] = [];
const dir = makeTempDir('tcp-gateway');
after(async () => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  for (const p of procs) await p.stop();
  removeTempDir(dir);
});

function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(ETCDCTL, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 },
    (err, out, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(out))));
}

/** Starts the gateway; resolves with its output once it says it is ready (or rejects with what it printed on exit). */
function startGateway(args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [etsdScript(), 'gateway', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready to proxy client requests')) resolve({ child, output: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${out}`)));
  });
}

test('etcdctl through the gateway; a refusing endpoint is passed over', { skip: !existsSync(ETCDCTL) && 'no etcdctl' }, async () => {
  const [dead, gwPort] = await freePorts(2);
  const member = await EtsdProcess.startReady({ dataDir: makeTempDir('tcp-gateway-m') });
  procs.push(member);
  // Flags before the subcommand, as etcd's e2e TestGateway passes them.
  const gw = await startGateway(['--endpoints', `http://127.0.0.1:${dead!},${member.endpoint}`, 'start', '--listen-addr', `127.0.0.1:${gwPort!}`]);
  for (let i = 0; i < 3; i++) assert.equal(await etcdctl(['--endpoints', `127.0.0.1:${gwPort!}`, 'put', `k${i}`, 'v']), 'OK\n');
  assert.equal(await etcdctl(['--endpoints', member.endpoint, 'get', 'k2', '--print-value-only']), 'v\n');
  assert.match(gw.output(), new RegExp(`"address":"127.0.0.1:${dead!}".*"msg":"deactivated endpoint"`));
  assert.match(gw.output(), new RegExp(`"endpoints":\\["127.0.0.1:${dead!}","${member.endpoint}"\\]`));
});

test('an endpoint at the gateway\'s own listen address is refused', async () => {
  const [port] = await freePorts(1);
  await assert.rejects(startGateway(['start', '--endpoints', `127.0.0.1:${port!}`, '--listen-addr', `127.0.0.1:${port!}`]),
    new RegExp(`gateway exited \\(1\\): SRV or endpoint \\(127.0.0.1:${port!}->127.0.0.1:${port!}\\) should not resolve to the gateway listen addr \\(127.0.0.1:${port!}\\)`));
});
