// One listening socket for gRPC (HTTP/2) and plain HTTP/1.1, as etcd serves
// both on its client port (cmux). Each new connection is sniffed: a client
// that opens with the HTTP/2 connection preface goes to the http2 server,
// anything else to the HTTP/1.1 server (/health, /metrics, /version, ...).
// The peeked bytes are put back (unshift) before handing the socket over;
// both node:http and node:http2 read what is already buffered on the socket.

import net from 'node:net';
import { listenUnix } from '../common/unix-listen.js';
import type http from 'node:http';
import type http2 from 'node:http2';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ListenAddr {
  host: string;
  port: number;
  /** unix:// and unixs:// client URLs: listen on this socket path instead of host:port. */
  path?: string;
}

export interface SharedListenOptions {
  /** A connection that sends nothing recognisable within this time is closed (ms). Default 10 s. */
  sniffTimeoutMs?: number;
  /**
   * TLS: makes the listening server and calls onSocket with each handshaken
   * socket (src/tls/side.ts). A socket whose ALPN chose h2 or http/1.1 goes
   * straight to that server; one without ALPN is sniffed like plaintext.
   * Absent: plain TCP, every connection sniffed.
   */
  createServer?: (onSocket: (socket: net.Socket) => void) => net.Server;
}

export interface SharedListener {
  readonly server: net.Server;
  /** The bound address (port resolved when 0 was asked). */
  readonly address: ListenAddr;
  /** Stops accepting and destroys the sockets still being sniffed; the h1/h2 servers close their own. */
  close(): Promise<void>;
}

/** 'h2' when the bytes are the HTTP/2 preface, 'h1' when they cannot be, null when too few to tell. */
export function classifyPreface(buf: Buffer): 'h2' | 'h1' | null {
  const n = Math.min(buf.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== H2_PREFACE[i]) return 'h1';
  return n === H2_PREFACE.length ? 'h2' : null;
}

/**
 * Listens on addr and routes every connection to h2 or h1 by its first bytes.
 * Neither h2 nor h1 needs to listen itself.
 */
export function listenShared(addr: ListenAddr, h2: http2.Http2Server | http2.Http2SecureServer, h1: http.Server,
  opts: SharedListenOptions = {}): Promise<SharedListener> {
  const sniffTimeoutMs = opts.sniffTimeoutMs ?? 10_000;
  const sniffing = new Set<net.Socket>();

  const sniff = (socket: net.Socket) => {
    sniffing.add(socket);
    let peeked: Buffer | null = null;
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    timer.unref();
    const finish = (to: 'h2' | 'h1' | null) => {
      clearTimeout(timer);
      sniffing.delete(socket);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('end', onEnd);
      if (to === null) { socket.destroy(); return; }
      socket.pause();
      if (peeked !== null) socket.unshift(peeked);
      if (to === 'h2') {
        // node:http2 takes over the handle and first drains what is buffered (socket.read()).
        h2.emit('connection', socket);
      } else {
        // node:http reads the handle directly too, but only its 'data' listener sees the
        // buffered bytes, and that needs the socket flowing again.
        h1.emit('connection', socket);
        socket.resume();
      }
    };
    const onData = (chunk: Buffer) => {
      peeked = peeked === null ? chunk : Buffer.concat([peeked, chunk]);
      const kind = classifyPreface(peeked);
      if (kind !== null) finish(kind);
    };
    const onError = () => finish(null);
    // The peer half-closed before we could tell (it sent at most a prefix of the preface).
    const onEnd = () => finish(null);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
  };
  const server = opts.createServer === undefined
    ? net.createServer({ noDelay: true }, sniff)
    : opts.createServer((socket) => {
      const alpn = (socket as net.Socket & { alpnProtocol?: string | false }).alpnProtocol;
      if (alpn === 'h2') h2.emit('connection', socket);
      else if (alpn === 'http/1.1') h1.emit('connection', socket);
      else sniff(socket);
    });

  return new Promise<SharedListener>((resolve, reject) => {
    const onListenError = (err: Error) => reject(err);
    server.once('error', onListenError);
    const onListening = () => {
      server.removeListener('error', onListenError);
      const a = server.address();
      resolve({
        server,
        address: a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : addr,
        close: () => new Promise<void>((res) => {
          for (const s of sniffing) s.destroy();
          sniffing.clear();
          server.close(() => res());
        }),
      });
    };
    if (addr.path !== undefined) listenUnix(server, addr.path, onListening);
    else server.listen(addr.port, addr.host, onListening);
  });
}
