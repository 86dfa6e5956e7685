// Real etcdctl (Debian's etcd-client) against one endpoint: its stdout, or an
// error carrying its stderr.
import { execFile } from 'node:child_process';

export const ETCDCTL_BIN = '/usr/bin/etcdctl';

export function etcdctlAt(endpoint: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ETCDCTL_BIN, [`--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: timeoutMs }, (err, out, errOut) => {
      if (err) reject(new Error(`etcdctl ${args.join(' ')}: ${errOut}`));
      else resolve(out);
    });
  });
}
