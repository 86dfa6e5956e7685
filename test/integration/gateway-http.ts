// A small HTTP/1.1 client for the JSON gateway tests (node:http, no gRPC):
// unary POSTs, and streams whose request body stays open so JSON requests
// can be written one by one while the {"result": ...} lines are collected.
// Every wait has a timeout.

import http from 'node:http';

const DEFAULT_TIMEOUT_MS = 10_000;
const POLL_MS = 5;

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Json | undefined;
}

function parseOrUndefined(text: string): Json | undefined {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/** base64 of a UTF-8 string, as the gateway's bytes fields want it. */
export const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
export const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** One POST; body is sent as is when a string, else as JSON. */
export function post(endpoint: string, path: string, body: Json | string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<HttpAnswer> {
  const [host, port] = endpoint.split(':');
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: Number(port), path, method: 'POST', headers: { 'Content-Type': 'application/json' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseOrUndefined(text) });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** A streaming call: request values written on an open chunked body, response lines kept in order. */
export class HttpStream {
  readonly lines: Json[] = [];
  status = 0;
  /** Set once the response has ended (or failed). */
  ended = false;
  error: Error | null = null;
  private readonly req: http.ClientRequest;
  private rest = '';

  constructor(endpoint: string, path: string) {
    const [host, port] = endpoint.split(':');
    this.req = http.request({ host, port: Number(port), path, method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      this.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (t: string) => this.take(t));
      res.on('end', () => { this.flush(); this.ended = true; });
      res.on('error', (e) => { this.error = e; this.ended = true; });
    });
    this.req.on('error', (e) => { this.error = e; this.ended = true; });
    this.req.flushHeaders();
  }

  private take(t: string): void {
    this.rest += t;
    let nl: number;
    while ((nl = this.rest.indexOf('\n')) >= 0) {
      const line = this.rest.slice(0, nl);
      this.rest = this.rest.slice(nl + 1);
      if (line.trim() !== '') this.lines.push(JSON.parse(line) as Json);
    }
  }

  /** The stream error chunk has no newline after it. */
  private flush(): void {
    if (this.rest.trim() !== '') this.lines.push(JSON.parse(this.rest) as Json);
    this.rest = '';
  }

  send(value: Json | string): void { this.req.write(typeof value === 'string' ? value : JSON.stringify(value)); }

  /** Ends the request body (the gateway half-closes the call). */
  endRequest(): void { this.req.end(); }

  /** Goes away (the call is cancelled). */
  destroy(): void { this.req.destroy(); }

  async waitFor(pred: (line: Json, index: number) => boolean, what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.lines.length; from++) if (pred(this.lines[from]!, from)) return this.lines[from]!;
      if (this.ended) throw new Error(`stream ended (${this.error?.message ?? 'end of response'}) while waiting for ${what}; lines: ${JSON.stringify(this.lines)}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; lines: ${JSON.stringify(this.lines)}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  async waitEnd(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error(`stream did not end in ${timeoutMs} ms; lines: ${JSON.stringify(this.lines)}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** obj[a][b]... for JSON answers, undefined when a step is missing. */
export function dig(v: Json | undefined, ...path: (string | number)[]): Json | undefined {
  let cur: Json | undefined = v;
  for (const p of path) {
    if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, Json>)[p as string];
  }
  return cur;
}
