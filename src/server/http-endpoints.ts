import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Member } from '../member/member.js';
import { createMetrics } from './metrics/prometheus.js';
import type { CallCounters } from '../grpc/call-counters.js';
import { ETCD_API_VERSION } from '../common/version.js';
import { AlarmType } from '../storage/mvcc/alarms.js';

/** The etcd API level etsd speaks, reported by /version. */

const ALARM_NAMES: Record<AlarmType, string> = { [AlarmType.NONE]: 'NONE', [AlarmType.NOSPACE]: 'NOSPACE', [AlarmType.CORRUPT]: 'CORRUPT' };

export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void;

/** HTTP/1.1 endpoints on the client port, beside gRPC (etcd's /health and /version). */
export function httpRoutes(member: Member, etsdVersion: string, calls: CallCounters | null = null): Map<string, HttpRoute> {
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const routes = new Map<string, HttpRoute>();
  // etcd 3.4's /health: an alarm (unless ?exclude=NAME) or no leader makes it false, answered as
  // http.Error does (503, text/plain, a newline after the JSON); the reason goes to the log, as etcd logs it.
  routes.set('/health', (req, res) => {
    const excluded = new Set(new URL(req.url ?? '/', 'http://x').searchParams.getAll('exclude'));
    const alarm = member.alarms().map((a) => ALARM_NAMES[a]).find((n) => !excluded.has(n));
    const why = alarm !== undefined ? `/health error due to an alarm ${alarm}` : member.isLeaderKnown() ? null : '/health error; no leader (status code 503)';
    if (why === null) return json(res, 200, { health: 'true' });
    member.log.warn(why);
    res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    res.end(JSON.stringify({ health: 'false' }) + '\n');
  });
  // etcd 3.5's probes (Kubernetes): named checks, "ok" or 503 with "<path> check failed"; ?verbose lists them all.
  const probe = (path: string, checks: [string, () => string | null][]): HttpRoute => (req, res) => {
    const verbose = new URL(req.url ?? '/', 'http://x').searchParams.has('verbose');
    const lines: string[] = [];
    let failed = false;
    for (const [name, check] of checks) {
      const why = check();
      if (why === null) { if (verbose) lines.push(`[+]${name} ok`); } else { failed = true; lines.push(`[-]${name} failed: ${why}`); }
    }
    lines.push(failed ? `${path} check failed` : 'ok');
    res.writeHead(failed ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(lines.join('\n') + '\n');
  };
  // Answered by the main thread at all: alive.
  routes.set('/livez', probe('livez', []));
  routes.set('/readyz', probe('readyz', [
    ['data_corruption', () => (member.alarms().includes(AlarmType.CORRUPT) ? 'alarm activated: CORRUPT' : null)],
    ['linearizable_read', () => (member.isLeaderKnown() ? null : 'etcdserver: no leader')],
  ]));
  routes.set('/version', (_req, res) => json(res, 200, { etcdserver: ETCD_API_VERSION, etcdcluster: ETCD_API_VERSION, etsd: etsdVersion }));
  // Per-stage latency histograms: JSON, or text with ?format=text; ?reset=1 (or POST) clears them after reading.
  routes.set('/debug/latency', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('format') === 'text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(member.stages.text());
    } else {
      json(res, 200, member.stages.snapshot());
    }
    if (req.method === 'POST' || url.searchParams.get('reset') === '1') member.stages.reset();
  });
  const metrics = createMetrics(member, calls);
  routes.set('/metrics', (_req, res) => {
    metrics.render().then((body) => {
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(body);
    }, (err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  return routes;
}

export function httpHandler(routes: Map<string, HttpRoute>) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes.get(path);
    if (route) route(req, res);
    else { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('404 page not found\n'); }
  };
}
