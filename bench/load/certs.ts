// Certificates for benchmarks with client TLS (compare.ts --tls), made with the
// openssl CLI in a temporary directory: a CA, a server certificate for
// 127.0.0.1, and a client certificate. Both servers get the same files.
// EC P-256 keys, as etcd's and Go's clients prefer.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TlsFiles } from './conn-types.js';

export interface BenchCerts {
  /** What the load clients present (--cacert, --cert, --cert-key). */
  client: TlsFiles;
  /** What the servers get (--trusted-ca-file, --cert-file, --key-file). */
  server: TlsFiles;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a CA and two leaves under `dir`. The client's CN is no user name, so with auth on only its token counts. */
export function makeBenchCerts(dir: string): BenchCerts {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '7', '-subj', '/CN=etsd-bench-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const leaf = (name: string, cn: string): void => {
    writeFileSync(path.join(dir, `${name}.ext`), 'basicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\n'
      + 'extendedKeyUsage = serverAuth, clientAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n');
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '7',
      '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
  };
  leaf('server', 'etsd-bench-server');
  leaf('client', 'etsd-bench-client');
  const f = (n: string): string => path.join(dir, n);
  return {
    client: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') },
    server: { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') },
  };
}
