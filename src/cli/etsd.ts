#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, parseArgs, usage } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { Member } from '../server/member.js';
import { createGrpcServer, listen } from '../server/grpc-server.js';
import { kvHandlers } from '../server/kv-service.js';
import { watchHandlers } from '../server/watch-service.js';
import { leaseService } from '../server/lease-service.js';
import { lockHandlers } from '../server/lock-service.js';
import { electionHandlers } from '../server/election-service.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
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
  const log = createLogger(cfg.logLevel, { name: cfg.name });
  log.info({ version: version(), dataDir: cfg.dataDir, shards: cfg.shards }, 'starting etsd');

  const member = await Member.start(cfg, log);
  const leases = leaseService(member);
  const election = electionHandlers(member);
  const unary = new Map([...kvHandlers(member), ...leases.unary, ...lockHandlers(member), ...election.unary]);
  const streams = new Map([...watchHandlers(member), ...leases.streams]);
  const server = createGrpcServer(unary, streams, { maxRequestBytes: cfg.maxRequestBytes, log }, election.serverStreams);
  await listen(server, cfg.listenClientUrls);
  log.info({ urls: cfg.listenClientUrls }, 'serving client requests');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    leases.stop();
    server.tryShutdown(() => {
      member.stop().then(() => process.exit(0), (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      });
    });
    // Open streams must not hold the member up forever.
    setTimeout(() => { server.forceShutdown(); }, 2000).unref();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`etsd: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
