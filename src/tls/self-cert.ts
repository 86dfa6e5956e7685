// --auto-tls / --peer-auto-tls: a self-signed certificate as etcd's
// transport.SelfCert makes it: ECDSA P-521, subject O=etcd, the listen URLs'
// hosts as IP or DNS SANs, written to <data-dir>/fixtures/{client,peer}/
// {cert,key}.pem and reused when both files are already there. Clients of a
// self-signed side do not verify it (etcd sets InsecureSkipVerify).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface SelfCertFiles { certFile: string; keyFile: string }

/** Host part of a listen URL ("[::1]" -> "::1"). */
function hostOf(url: string): string {
  const h = new URL(url).hostname;
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

export async function ensureSelfCert(dir: string, listenUrls: readonly string[], validityYears: number, forPeers: boolean): Promise<SelfCertFiles> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hosts = [...new Set(listenUrls.map(hostOf))];
  const now = new Date();
  // Loaded here, not at start: selfsigned (node-forge) costs ~1 s of start-up
  // on a busy 2-core machine, and only --auto-tls members need it.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'organizationName', value: 'etcd' }], {
    keyType: 'ec', curve: 'P-521', algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + validityYears * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      // Peers dial each other with the same certificate, so it is a client certificate too.
      { name: 'extKeyUsage', serverAuth: true, clientAuth: forPeers },
      { name: 'subjectAltName', altNames: hosts.map((h) => (isIP(h) !== 0 ? { type: 7 as const, ip: h } : { type: 2 as const, value: h })) },
    ],
  });
  writeFileSync(keyFile, pems.private, { mode: 0o600 });
  writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { certFile, keyFile };
}
