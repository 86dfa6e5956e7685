// `etsd gateway start`: etcd 3.4's `etcd gateway start` (etcdmain/gateway.go)
// with its flags and messages: --endpoints (schemes stripped), --listen-addr,
// --retry-delay. DNS SRV discovery (--discovery-srv) is refused by name.

import { lookup } from 'node:dns/promises';
import { ConfigError, parseDuration } from '../common/config.js';
import { createLogger } from '../common/log.js';
import { TcpGateway, type GatewayEndpoint } from '../transport/tcp-gateway.js';

interface GatewayFlags { listenAddr: string; endpoints: string[]; retryDelayMs: number }

const STRING_FLAGS = new Set(['listen-addr', 'endpoints', 'retry-delay', 'discovery-srv', 'discovery-srv-name', 'trusted-ca-file']);
const BOOL_FLAGS = new Set(['insecure-discovery']);

/** The flags of `gateway start`; as with cobra, they may come before or after the subcommand. */
function parseGatewayFlags(argv: string[]): GatewayFlags {
  const raw = new Map<string, string>();
  let sub: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) {
      if (sub !== null) throw new ConfigError(`unknown command "${arg}" for "etcd gateway ${sub}"`);
      if (arg !== 'start') throw new ConfigError(`unknown command "${arg}" for "etcd gateway"`);
      sub = arg;
      continue;
    }
    const name = m[1]!;
    if (BOOL_FLAGS.has(name)) { raw.set(name, m[2] ?? 'true'); continue; }
    if (!STRING_FLAGS.has(name)) throw new ConfigError(`unknown flag: --${name}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag needs an argument: --${name}`);
    raw.set(name, value);
  }
  if (sub === null) throw new ConfigError('gateway needs a subcommand: start');
  if ((raw.get('discovery-srv') ?? '') !== '') throw new ConfigError('--discovery-srv is not supported by etsd\'s gateway: give the members with --endpoints');
  return {
    listenAddr: raw.get('listen-addr') ?? '127.0.0.1:23790',
    endpoints: (raw.get('endpoints') ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean),
    retryDelayMs: parseDuration(raw.get('retry-delay') ?? '1m', 'retry-delay'),
  };
}

/** etcd's stripSchema: a URL with a host becomes its host:port. */
function stripSchema(ep: string): string {
  try {
    const u = new URL(ep);
    if (u.host !== '' && ep.includes('://')) return u.host;
  } catch {
    // not a URL: host:port as given
  }
  return ep;
}

function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(s);
  if (m === null) return null;
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}

async function addresses(host: string): Promise<string[]> {
  return (await lookup(host === '' ? 'localhost' : host, { all: true })).map((a) => a.address);
}

/** Runs `gateway start` (argv after "gateway", flags before or after "start"); exits the process on etcd's startup errors. */
export async function runGateway(argv: string[]): Promise<void> {
  const flags = parseGatewayFlags(argv);
  const log = createLogger('info');
  const endpoints: GatewayEndpoint[] = [];
  for (const ep of flags.endpoints.map(stripSchema)) {
    const hp = splitHostPort(ep);
    if (hp === null) {
      process.stdout.write(`error parsing endpoint "${ep}"`);
      process.exit(1);
    }
    endpoints.push(hp);
  }
  const listen = splitHostPort(flags.listenAddr);
  if (listen === null) {
    process.stdout.write(`failed to validate listen address: ${flags.listenAddr}\n`);
    process.exit(1);
  }
  // etcd refuses an endpoint that resolves to the gateway's own listen address.
  const own = new Set(await addresses(listen.host));
  for (const ep of endpoints) {
    if (ep.port !== listen.port) continue;
    for (const a of await addresses(ep.host)) {
      if (own.has(a)) {
        process.stdout.write(`SRV or endpoint (${ep.host}:${ep.port}->${a}:${ep.port}) should not resolve to the gateway listen addr (${flags.listenAddr})\n`);
        process.exit(1);
      }
    }
  }
  if (endpoints.length === 0) {
    process.stdout.write('no endpoints found\n');
    process.exit(1);
  }
  const gw = new TcpGateway(endpoints, flags.retryDelayMs, log);
  try {
    await gw.listen(listen.host, listen.port);
  } catch (err) {
    process.stderr.write(`listen tcp ${flags.listenAddr}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const stop = () => { gw.stop().then(() => process.exit(0), () => process.exit(1)); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
