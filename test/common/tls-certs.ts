// Test certificates made with the openssl CLI in a temp directory: a CA,
// certificates it signs (server and client use, loopback SANs by default),
// and a CRL revoking some of them. EC P-256 keys: quick to make.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ca { name: string; dir: string; cert: string; key: string }
export interface Leaf { cert: string; key: string; cn: string }

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA under dir/name/. */
export function makeCa(dir: string, name: string): Ca {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d);
  writeFileSync(join(d, 'index.txt'), '');
  writeFileSync(join(d, 'crlnumber'), '01\n');
  writeFileSync(join(d, 'ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', `database = ${join(d, 'index.txt')}`, `crlnumber = ${join(d, 'crlnumber')}`,
    'default_md = sha256', 'default_crl_days = 3', `certificate = ${join(d, 'ca.pem')}`, `private_key = ${join(d, 'ca.key')}`, '',
  ].join('\n'));
  return { name, dir: d, cert: join(d, 'ca.pem'), key: join(d, 'ca.key') };
}

let serial = 1000;

/**
 * A certificate signed by ca, written as <file>.pem / <file>.key in ca.dir.
 * sans: openssl subjectAltName entries (default IP:127.0.0.1, DNS:localhost).
 */
export function issue(ca: Ca, file: string, cn: string, sans = ['IP:127.0.0.1', 'DNS:localhost']): Leaf {
  const d = ca.dir;
  const ext = join(d, `${file}.ext`);
  writeFileSync(ext, [
    'basicConstraints = CA:FALSE', 'keyUsage = digitalSignature, keyEncipherment',
    'extendedKeyUsage = serverAuth, clientAuth', ...(sans.length > 0 ? [`subjectAltName = ${sans.join(', ')}`] : []), '',
  ].join('\n'));
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${cn}`], d);
  openssl(['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial++),
    '-days', '2', '-extfile', ext, '-out', `${file}.pem`], d);
  return { cert: join(d, `${file}.pem`), key: join(d, `${file}.key`), cn };
}

/** Revokes the leaves and writes ca.dir/crl.pem (the CA's current CRL); returns its path. */
export function revoke(ca: Ca, leaves: Leaf[]): string {
  for (const l of leaves) openssl(['ca', '-config', 'ca.cnf', '-revoke', l.cert], ca.dir);
  const out = join(ca.dir, 'crl.pem');
  openssl(['ca', '-config', 'ca.cnf', '-gencrl', '-out', out], ca.dir);
  return out;
}
