#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, parseArgs, usage } from '../common/config.js';
import { resolveArgs, type ResolvedArgs } from '../common/config-sources.js';
import { createLogger } from '../common/log.js';
import { parseMemberUrl } from '../common/member-url.js';
import { runGateway } from './gateway-command.js';
import { Member } from '../member/member.js';
import http from 'node:http';
import type { Socket } from 'node:net';
import { GRPC_OVERHEAD_BYTES } from '../grpc/rpc.js';
import { createRawGrpcServer } from '../grpc/server.js';
import { CallCounters } from '../grpc/call-counters.js';
import { adaptStreamHandlers } from '../grpc/adapt.js';
import { listenShared, type SharedListener } from '../grpc/port-sharing.js';
import { httpHandler, httpRoutes } from '../server/http-endpoints.js';
import { kvHandlers } from '../server/kv-service.js';
import { watchHandlers } from '../server/watch-service.js';
import { leaseService } from '../server/lease-service.js';
import { lockHandlers } from '../server/lock-service.js';
import { electionHandlers } from '../server/election-service.js';
import { clusterHandlers } from '../server/cluster-service.js';
import { gateStreams, gateUnary } from '../server/learner-gate.js';
import { hashHandlers } from '../server/maintenance-hash.js';
import { defragHandlers } from '../server/maintenance-defrag.js';
import { TlsSide } from '../tls/side.js';
import { createGateway } from '../gateway/gateway.js';

/** The metrics port serves what etcd's does there: /metrics and the health probes, nothing else. */
function metricsOnly(handler: http.RequestListener): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/metrics' || path === '/health' || path === '/readyz' || path === '/livez') return handler(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
  };
}
import { authHandlers } from '../server/auth-service.js';
import { snapshotStreams } from '../server/maintenance-snapshot.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(): Promise<void> {
  let parsed;
  let sources: ResolvedArgs;
  try {
    if (process.argv[2] === 'gateway') { await runGateway(process.argv.slice(3)); return; }
    sources = resolveArgs(process.argv.slice(2), process.env, (path) => readFileSync(path, 'utf8'));
    parsed = parseArgs(sources.argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`etsd: ${err.message}\n${usage()}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (parsed.help) { process.stdout.write(usage() + '\n'); return; }
  if (parsed.version) { process.stdout.write(`etsd Version: ${version()}\nAPI: etcd v3 (3.4/3.5 wire)\n`); return; }
  const cfg = parsed.config;
  const log = createLogger(cfg.logLevel, { name: cfg.name }, cfg.logOutputs);
  for (const n of sources.notes) log[n.level](n.msg);
  for (const w of parsed.warnings) log.warn(w);
  log.info({ version: version(), dataDir: cfg.dataDir, shards: cfg.shards }, 'starting etsd');

  // Certificates are read (or made, auto-tls) before the member starts: a bad file fails fast.
  const clientTls = await TlsSide.prepare(cfg.tls, 'client', cfg.dataDir, cfg.listenClientUrls, log);
  const member = await Member.start(cfg, log);
  // As etcd: clients are served once this member's attributes are published through raft.
  await member.published;
  const leases = leaseService(member);
  const election = electionHandlers(member);
  const isLearner = () => member.isLearnerSelf;
  const unary = gateUnary(new Map([
    ...kvHandlers(member), ...leases.unary, ...lockHandlers(member), ...election.unary, ...clusterHandlers(member), ...hashHandlers(member),
    ...defragHandlers(member),
    ...authHandlers(member),
  ]), isLearner);
  const streams = new Map([...watchHandlers(member), ...leases.streams]);
  // gRPC (our own HTTP/2 framing on the socket) and HTTP/1.1 share each client port, as etcd's cmux does.
  const streamHandlers = gateStreams(new Map([...adaptStreamHandlers(streams, election.serverStreams), ...snapshotStreams(member)]), isLearner);
  const maxRecvBytes = cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  const calls = new CallCounters();
  const grpcServer = createRawGrpcServer({
    unary, streams: streamHandlers, maxRecvBytes, log, calls,
    settings: { maxConcurrentStreams: cfg.maxConcurrentStreams },
  });
  // The JSON gateway calls the same handler maps as gRPC (src/gateway).
  const gateway = createGateway({ unary, streams: streamHandlers, maxRecvBytes, log, maxConcurrentStreams: cfg.maxConcurrentStreams });
  const endpoints = httpHandler(httpRoutes(member, version(), calls));
  const httpServer = http.createServer((req, res) => {
    if (gateway.handles((req.url ?? '/').split('?')[0]!)) gateway.serve(req, res);
    else endpoints(req, res);
  });
  const listeners: SharedListener[] = [];
  for (const u of cfg.listenClientUrls) {
    const addr = parseMemberUrl(u, 2379);
    // https (unixs): TLS ends here; the decrypted socket goes to the same gRPC and HTTP/1.1 servers.
    if (addr.secure && clientTls === null) throw new Error(`no client TLS certificate for ${u}`);
    const createServer = addr.secure && clientTls !== null
      ? (onSocket: (s: Socket) => void) => clientTls.createServer('client-port', onSocket)
      : undefined;
    listeners.push(await listenShared(addr, grpcServer.http2, httpServer, { createServer }));
  }
  log.info({ urls: cfg.listenClientUrls }, 'ready to serve client requests');
  // --listen-metrics-urls: /metrics and /health on their own port (plain HTTP/1.1), as etcd serves them.
  const metricsServers: http.Server[] = [];
  for (const u of cfg.listenMetricsUrls) {
    const url = new URL(u);
    const server = http.createServer(metricsOnly(httpHandler(httpRoutes(member, version(), calls))));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(url.port), url.hostname, () => resolve());
    });
    metricsServers.push(server);
  }
  if (metricsServers.length > 0) log.info({ urls: cfg.listenMetricsUrls }, 'serving metrics and health');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    leases.stop();
    // Open streams get up to 2 s to finish; then the member stops.
    for (const m of metricsServers) m.close();
    Promise.all([...listeners.map((l) => l.close()), grpcServer.close(2000)])
      .then(() => member.stop())
      .then(() => process.exit(0), (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  // A configuration found wrong at start (the JWT key files): etcd's message alone.
  if (err instanceof ConfigError) {
    process.stderr.write(`etsd: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`etsd: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
