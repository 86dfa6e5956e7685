// GET on a peer's URL (GET /members when joining, the snapshot stream), over
// https when the URL says so, with the peer certificates (src/tls/side.ts).

import http from 'node:http';
import https from 'node:https';
import type { TlsSide } from './side.js';

/** Resolves with the response (status, headers, body stream) or rejects on a connection error or timeout. */
/** `body`: sent with the GET, as etcd's /members/hashkv request carries its JSON. */
export function peerGet(url: URL, side: TlsSide | null, timeoutMs: number, headers: Record<string, string> = {}, body?: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest;
    if (url.protocol === 'https:') {
      if (side === null) { reject(new Error(`cannot reach ${url.origin} without peer TLS certificates`)); return; }
      req = https.request(url, { ...side.requestOptions(), method: 'GET', agent: false, timeout: timeoutMs, headers }, resolve);
    } else {
      req = http.request(url, { method: 'GET', agent: false, timeout: timeoutMs, headers }, resolve);
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
