import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Member } from './member.js';

/** The etcd API level etsd speaks, reported by /version. */
export const ETCD_API_VERSION = '3.5.0';

export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => void;

/** HTTP/1.1 endpoints on the client port, beside gRPC (etcd's /health and /version). */
export function httpRoutes(member: Member, etsdVersion: string): Map<string, HttpRoute> {
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const routes = new Map<string, HttpRoute>();
  routes.set('/health', (_req, res) => {
    const ok = member.isLeaderKnown();
    json(res, ok ? 200 : 503, ok ? { health: 'true', reason: '' } : { health: 'false', reason: 'RAFT NO LEADER' });
  });
  routes.set('/version', (_req, res) => json(res, 200, { etcdserver: ETCD_API_VERSION, etcdcluster: ETCD_API_VERSION, etsd: etsdVersion }));
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
