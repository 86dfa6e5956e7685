// The peer transport's sockets with peer TLS: https:// (and unixs://) listen URLs
// get a TLS listener, https:// (unixs://) peer URLs are dialled with TLS (our peer certificate as the
// client certificate, as etcd's peers do); http:// stays plain TCP.

import net from 'node:net';
import { socketTarget, type HostPort, type PeerSocketFactory } from '../transport/peer-transport.js';
import type { TlsSide } from './side.js';

export function peerSocketFactory(side: TlsSide | null): PeerSocketFactory {
  return {
    createServer(secure, onSocket) {
      if (!secure) return net.createServer({ noDelay: true }, onSocket);
      if (side === null) throw new TypeError('https:// peer URL without peer TLS certificates');
      return side.createServer('peer-port', onSocket);
    },
    dial(addr: HostPort, onReady) {
      if (addr.secure !== true) {
        const s = net.connect({ ...socketTarget(addr), noDelay: true });
        s.once('connect', onReady);
        return s;
      }
      if (side === null) throw new TypeError(`cannot dial https://${addr.host}:${addr.port} without peer TLS certificates (--peer-cert-file, --peer-key-file or --peer-auto-tls)`);
      return side.dial(addr.host, addr.port, onReady, addr.path);
    },
  };
}
