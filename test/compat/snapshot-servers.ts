// Servers on a given data dir with given flags (the harness's startServer makes
// its own fresh dir): a real etcd on a restored data dir, an etsd on an
// etsdutl-restored one. Killed by PID at process exit like the harness's.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../common/ports.js';
import { serverCommand, type ServerHandle, type ServerKind } from './harness.js';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch (err) {
      // Only "no such process" (it exited meanwhile) is expected.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
});

export interface Urls { client: string; peer: string; clientPort: number; peerPort: number }

export async function freeUrls(): Promise<Urls> {
  const [clientPort, peerPort] = await freePorts(2);
  return { client: `http://127.0.0.1:${clientPort!}`, peer: `http://127.0.0.1:${peerPort!}`, clientPort: clientPort!, peerPort: peerPort! };
}

/** Starts `kind` with these flags; its log goes to tempDir/<label>.log. Does not wait for readiness. */
export function startWithFlags(kind: ServerKind, label: string, tempDir: string, urls: Urls, flags: string[]): ServerHandle {
  const cmd = serverCommand(kind);
  const logFile = join(tempDir, `${label}.log`);
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd.file, [...cmd.prefix, ...flags,
      '--listen-client-urls', urls.client, '--advertise-client-urls', urls.client, '--listen-peer-urls', urls.peer,
    ], { cwd: tempDir, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  live.add(child);
  const h: ServerHandle = { label, kind, endpoint: `127.0.0.1:${urls.clientPort}`, tempDir, logFile, child, exited: false, exitDescription: '' };
  child.on('exit', (code, signal) => {
    h.exited = true;
    h.exitDescription = signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
    live.delete(child);
  });
  return h;
}
