// Who is on the other end of a TLS connection, for request handling: the
// verified client certificate's Common Name (etcd uses it as the user when auth
// is on and the request carries no token). Looked up on first use per socket
// and cached, so connections and calls that never ask pay nothing.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

const cache = new WeakMap<Socket, string | null>();

/** The CN of the peer's verified certificate; null on plaintext, without a certificate, or when unverified. */
export function peerCommonName(socket: Socket): string | null {
  const hit = cache.get(socket);
  if (hit !== undefined) return hit;
  let cn: string | null = null;
  if (socket instanceof TLSSocket && socket.authorized) {
    const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined;
    const v = subject?.['CN'];
    cn = Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
    if (cn === '') cn = null;
  }
  cache.set(socket, cn);
  return cn;
}
