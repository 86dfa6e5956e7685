// The gateway differential cases (gateway-cases.txt): parsing, running one
// case's HTTP steps against one server, and normalizing the transcript so
// two servers' transcripts can be compared as text.
//
// File format: "== name" starts a case; then one step per line:
//   POST <path> <body>       a unary request; the body is the rest of the line, sent as is
//   GET <path>               a GET (grpc-gateway answers 405 on its POST routes)
//   OPEN <s> <path>          opens a streaming call s with an open request body
//   SEND <s> <body>          writes one request value on s
//   WAIT <s> <n>             waits until s has n response lines; prints the new ones
//   HALFCLOSE <s>            ends s's request body
//   DONE <s>                 waits until s's response ends; prints the rest and the end
//   CLOSE <s>                the client goes away (request destroyed)
// In bodies, {{text}} is replaced by the base64 of text. "#" lines are comments.

import { HttpStream, post, type Json } from '../integration/gateway-http.js';
import http from 'node:http';

export type Step =
  | { op: 'POST'; path: string; body: string }
  | { op: 'GET'; path: string }
  | { op: 'OPEN'; stream: string; path: string }
  | { op: 'SEND'; stream: string; body: string }
  | { op: 'WAIT'; stream: string; n: number }
  | { op: 'HALFCLOSE' | 'DONE' | 'CLOSE'; stream: string };

export interface GatewayCase { name: string; line: number; steps: Step[] }

const WAIT_TIMEOUT_MS = 10_000;

function expandB64(body: string): string {
  return body.replace(/\{\{(.*?)\}\}/g, (_, t: string) => Buffer.from(t, 'utf8').toString('base64'));
}

export function parseGatewayCases(text: string, file: string): GatewayCase[] {
  const out: GatewayCase[] = [];
  let cur: GatewayCase | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const where = `${file}:${i + 1}`;
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('== ')) {
      cur = { name: line.slice(3).trim(), line: i + 1, steps: [] };
      out.push(cur);
      return;
    }
    if (cur === null) throw new Error(`${where}: step before the first "== name"`);
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (m === null) throw new Error(`${where}: cannot read step: ${line}`);
    const [, op, a, rest = ''] = m as unknown as [string, string, string, string | undefined];
    const steps = (cur as GatewayCase).steps;
    switch (op) {
      case 'POST': steps.push({ op, path: a, body: expandB64(rest) }); break;
      case 'GET': steps.push({ op, path: a }); break;
      case 'OPEN': steps.push({ op, stream: a, path: rest }); break;
      case 'SEND': steps.push({ op, stream: a, body: expandB64(rest) }); break;
      case 'WAIT': {
        const n = Number(rest);
        if (!Number.isInteger(n) || n < 1) throw new Error(`${where}: WAIT needs a line count`);
        steps.push({ op, stream: a, n });
        break;
      }
      case 'HALFCLOSE': case 'DONE': case 'CLOSE': steps.push({ op, stream: a }); break;
      default: throw new Error(`${where}: unknown step ${op}`);
    }
  });
  return out;
}

function get(endpoint: string, path: string): Promise<{ status: number; type: string; text: string }> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve, reject) => {
    http.get({ host, port: Number(port), path, timeout: WAIT_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}

const showLines = (ls: Json[]): string => ls.map((l) => `  ${JSON.stringify(l)}`).join('\n');

async function waitLines(s: HttpStream, n: number): Promise<boolean> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (s.lines.length < n && !s.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return s.lines.length >= n;
}

/** Runs the steps against one server; returns the raw transcript (one block per step). */
export async function runGatewayCase(endpoint: string, c: GatewayCase): Promise<string> {
  const streams = new Map<string, { s: HttpStream; shown: number }>();
  const out: string[] = [];
  const need = (name: string) => {
    const s = streams.get(name);
    if (s === undefined) throw new Error(`case "${c.name}": stream ${name} not opened`);
    return s;
  };
  try {
    for (const st of c.steps) {
      switch (st.op) {
        case 'POST': {
          const r = await post(endpoint, st.path, st.body);
          out.push(`POST ${st.path} -> ${r.status} ${String(r.headers['content-type'])}\n  ${r.text}`);
          break;
        }
        case 'GET': {
          const r = await get(endpoint, st.path);
          out.push(`GET ${st.path} -> ${r.status} ${r.type}\n  ${r.text}`);
          break;
        }
        case 'OPEN': streams.set(st.stream, { s: new HttpStream(endpoint, st.path), shown: 0 }); break;
        case 'SEND': need(st.stream).s.send(st.body); break;
        case 'WAIT': {
          const e = need(st.stream);
          const got = await waitLines(e.s, st.n);
          const fresh = e.s.lines.slice(e.shown);
          e.shown = e.s.lines.length;
          out.push(`WAIT ${st.stream} ${st.n} -> ${got ? 'ok' : `only ${e.s.lines.length} line(s)${e.s.ended ? ', ended' : ''}`} status ${e.s.status}\n${showLines(fresh)}`);
          break;
        }
        case 'HALFCLOSE': need(st.stream).s.endRequest(); break;
        case 'DONE': {
          const e = need(st.stream);
          let ended = true;
          try { await e.s.waitEnd(WAIT_TIMEOUT_MS); } catch { ended = false; }
          const fresh = e.s.lines.slice(e.shown);
          e.shown = e.s.lines.length;
          out.push(`DONE ${st.stream} -> ${ended ? 'ended' : 'still open'} status ${e.s.status}\n${showLines(fresh)}`);
          break;
        }
        case 'CLOSE': need(st.stream).s.destroy(); streams.delete(st.stream); break;
      }
    }
  } finally {
    for (const e of streams.values()) e.s.destroy();
  }
  return out.join('\n');
}

/** Server facts a transcript may show and that legitimately differ between two servers. */
export interface ServerIds { clusterId: string; memberId: string }

/**
 * Normalizes one transcript: the server's cluster and member ids, raft terms
 * and indexes, db sizes, its version and ports become placeholders; lease ids
 * the server chose (decimal numbers of 15 digits or more) become <L1>, <L2>...
 * in order of first appearance. Revisions stay: both servers start empty and
 * run the same cases, so they must agree.
 */
export function normalizeTranscript(text: string, ids: ServerIds): string {
  let t = text;
  t = t.split(`"${ids.clusterId}"`).join('"<cluster>"').split(`"${ids.memberId}"`).join('"<member>"');
  t = t.replace(/"(raft_term|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":"\d+"/g, '"$1":"<$1>"');
  t = t.replace(/"version":"3\.\d+\.\d+"/g, '"version":"<version>"');
  t = t.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
  // A lease's remaining TTL can tick between the two runs; its granted TTL cannot.
  t = t.replace(/("ID":"[^"]+","TTL":)"(\d+)"(,"grantedTTL")/g, '$1"<ttl>"$3');
  const leases = new Map<string, string>();
  t = t.replace(/"(\d{15,})"/g, (_, id: string) => {
    let l = leases.get(id);
    if (l === undefined) { l = `<L${leases.size + 1}>`; leases.set(id, l); }
    return `"${l}"`;
  });
  return t;
}
