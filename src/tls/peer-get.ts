// GET on a peer's URL (GET /members when joining, the snapshot stream), over
// https (unixs) when the URL says so, with the peer certificates (src/tls/side.ts).

import http from 'node:http';
import https from 'node:https';
import { isSecureUrl, isUnixUrl } from '../common/member-url.js';
import type { TlsSide } from './side.js';

/** Resolves with the response (status, headers, body stream) or rejects on a connection error or timeout. */
/** `body`: sent with the GET, as etcd's /members/hashkv request carries its JSON. */
export function peerGet(url: URL, side: TlsSide | null, timeoutMs: number, headers: Record<string, string> = {}, body?: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest;
    // unix:// and unixs:// peers: the same request on the socket at the URL's host:port (as etcd's unix transport).
    const target: http.RequestOptions = isUnixUrl(url)
      ? { socketPath: url.host, host: url.hostname, path: url.pathname + url.search }
      : { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port, path: url.pathname + url.search };
    const opts: http.RequestOptions = { ...target, method: 'GET', agent: false, timeout: timeoutMs, headers };
    if (isSecureUrl(url)) {
      if (side === null) { reject(new Error(`cannot reach ${url.href} without peer TLS certificates`)); return; }
      req = https.request({ ...opts, protocol: 'https:', ...side.requestOptions() }, resolve);
    } else {
      req = http.request({ ...opts, protocol: 'http:' }, resolve);
    }
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads a whole (small) response body as text. */
export async function readBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
