import { availableParallelism } from 'node:os';
import { ETCD_FLAGS, ETCD_IGNORED_FLAGS, refusal } from './etcd-flags.js';
import { AuthTokenFlagError, INVALID_AUTH_OPTS, parseAuthTokenFlag, type AuthTokenSpec } from './auth-token-flag.js';
import { parseTlsFlags, TlsConfigError, TLS_FLAGS, type TlsSettings } from './tls-flags.js';

/** Server configuration, spelled as etcd's flags. */
export interface Config {
  name: string;
  dataDir: string;
  walDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  initialAdvertisePeerUrls: string[];
  initialCluster: Map<string, string[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  maxRequestBytes: number;
  maxTxnOps: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  shards: number;
  /** Apply lag (committed - applied) past which writes get "too many requests". */
  maxPendingProposals: number;
  watchProgressNotifyIntervalMs: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  preVote: boolean;
  /** Main thread polls for workers' answers while one request waits (--busy-poll). */
  busyPoll: boolean;
  /** Applied entries between raft log compactions (etcd's --snapshot-count). */
  snapshotCount: number;
  /** Entries kept behind the applied index at a compaction, for slow followers (etcd's catch-up entries). */
  snapshotCatchupEntries: number;
  strictReconfigCheck: boolean;
  maxLearners: number;
  /** --auto-compaction-mode / --auto-compaction-retention, as etcd parses them; null when off (retention 0). */
  autoCompaction: AutoCompaction | null;
  /** Extra URLs serving only /metrics and /health (etcd's --listen-metrics-urls). */
  listenMetricsUrls: string[];
  /** SETTINGS_MAX_CONCURRENT_STREAMS on client HTTP/2 connections (etcd's default: 2^32-1). */
  maxConcurrentStreams: number;
  /** Where logs go: stderr (etcd's "default"), stdout, or files. */
  logOutputs: string[];
  /** etcd's --experimental-initial-corrupt-check: compare HashKV with peers before rejoining. */
  initialCorruptCheck: boolean;
  /** etcd's --experimental-corrupt-check-time: how often the leader compares HashKV with the members (0: never). */
  corruptCheckTimeMs: number;
  /** etcd's --force-new-cluster: restart as a one-member cluster with this member's data. */
  forceNewCluster: boolean;
  /** --quota-backend-bytes as given: 0 is etcd's default (2 GiB), negative turns the quota off. */
  quotaBackendBytes: number;
  /** Client and peer TLS (src/common/tls-flags.ts). */
  tls: TlsSettings;
  /** --auth-token split as etcd splits it: simple, or jwt with its options (read by src/auth/jwt-options.ts at start). */
  authToken: AuthTokenSpec;
  /** --auth-token-ttl in ms (etcd's flag is whole seconds, default 300). */
  authTokenTtlMs: number;
  /** --bcrypt-cost as given; auth/bcrypt-cost.ts applies etcd's fallback. */
  bcryptCost: number;
}

/** periodic: keep `retentionMs` of history; revision: keep the last `revisions` revisions. */
export type AutoCompaction = { mode: 'periodic'; retentionMs: number } | { mode: 'revision'; revisions: number };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type FlagKind = 'string' | 'int' | 'list' | 'bool';
interface FlagSpec { kind: FlagKind; help: string }

export const FLAGS: Record<string, FlagSpec> = {
  'name': { kind: 'string', help: 'Human-readable name for this member.' },
  'data-dir': { kind: 'string', help: 'Path to the data directory (default "${name}.etsd").' },
  'wal-dir': { kind: 'string', help: 'Path to the dedicated WAL directory (default: <data-dir>/member/wal).' },
  'listen-client-urls': { kind: 'list', help: 'List of URLs to listen on for client traffic.' },
  'advertise-client-urls': { kind: 'list', help: 'List of this member\'s client URLs to advertise to the public.' },
  'listen-peer-urls': { kind: 'list', help: 'List of URLs to listen on for peer traffic.' },
  'initial-advertise-peer-urls': { kind: 'list', help: 'List of this member\'s peer URLs to advertise to the rest of the cluster.' },
  'initial-cluster': { kind: 'string', help: 'Initial cluster configuration for bootstrapping (name=url,...).' },
  'initial-cluster-state': { kind: 'string', help: 'Initial cluster state (\'new\' or \'existing\').' },
  'initial-cluster-token': { kind: 'string', help: 'Initial cluster token for the cluster during bootstrap.' },
  'max-request-bytes': { kind: 'int', help: 'Maximum client request size in bytes the server will accept.' },
  'max-txn-ops': { kind: 'int', help: 'Maximum number of operations permitted in a transaction.' },
  'log-level': { kind: 'string', help: 'Configures log level: debug, info, warn, error, panic, or fatal.' },
  'shards': { kind: 'int', help: 'Number of shard worker threads serving reads (default cores-1, at least 1).' },
  'busy-poll': { kind: 'bool', help: 'While a lone request waits for a worker, poll for its answer instead of sleeping: more throughput for one client, at the cost of CPU (default false).' },
  'watch-progress-notify-interval': { kind: 'string', help: 'Duration of periodic watch progress notifications (default 10m).' },
  'experimental-watch-progress-notify-interval': { kind: 'string', help: 'Alias of --watch-progress-notify-interval (etcd 3.4/3.5 name).' },
  'heartbeat-interval': { kind: 'int', help: 'Time (in milliseconds) of a heartbeat interval (default 100).' },
  'election-timeout': { kind: 'int', help: 'Time (in milliseconds) for an election to timeout (default 1000).' },
  'pre-vote': { kind: 'bool', help: 'Enable the raft Pre-Vote algorithm to prevent disruption when a node rejoins (default true).' },
  'snapshot-count': { kind: 'int', help: 'Number of committed transactions to trigger a snapshot to disk (default 100000).' },
  'experimental-snapshot-catchup-entries': { kind: 'int', help: 'Number of entries for a slow follower to catch up after compacting the raft log (default 5000).' },
  'strict-reconfig-check': { kind: 'bool', help: 'Reject reconfiguration requests that would cause quorum loss (default true).' },
  'experimental-max-learners': { kind: 'int', help: 'Sets the maximum number of learners that can be available in the cluster membership (default 1).' },
  'auto-compaction-mode': { kind: 'string', help: 'Interpret \'auto-compaction-retention\' one of: periodic|revision. \'periodic\' for duration based retention, defaulting to hours if no time unit is provided (e.g. \'5m\'). \'revision\' for revision number based retention.' },
  'auto-compaction-retention': { kind: 'string', help: 'Auto compaction retention for mvcc key value store. 0 means disable auto compaction.' },
  'listen-metrics-urls': { kind: 'list', help: 'List of URLs to listen on for the metrics and health endpoints.' },
  'max-concurrent-streams': { kind: 'int', help: 'Maximum concurrent streams that each client can open at a time (default 2^32-1).' },
  'log-outputs': { kind: 'list', help: 'Specify \'stdout\' or \'stderr\' to skip journald logging even when running under systemd, or list of comma separated output targets (files).' },
  'log-output': { kind: 'list', help: '[DEPRECATED] use --log-outputs.' },
  'quota-backend-bytes': { kind: 'string', help: 'Raise alarms when backend size exceeds the given quota. 0 means use the default quota (2 GiB); negative turns it off.' },
  'experimental-initial-corrupt-check': { kind: 'bool', help: 'Enable to check data corruption before serving any client/peer traffic.' },
  'experimental-corrupt-check-time': { kind: 'string', help: 'Duration of time between cluster corruption check passes.' },
  'force-new-cluster': { kind: 'bool', help: 'Force to create a new one member cluster.' },
  'debug': { kind: 'bool', help: '[DEPRECATED] Enable debug-level logging for etcd. Use \'--log-level=debug\' instead.' },
  'config-file': { kind: 'string', help: 'Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.' },
  ...TLS_FLAGS,
  'auth-token': { kind: 'string', help: 'Specify auth token specific options: \'simple\' or \'jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256,ttl=5m\'.' },
  'auth-token-ttl': { kind: 'int', help: 'The lifetime in seconds of the auth token (default 300).' },
  'bcrypt-cost': { kind: 'int', help: 'Specify bcrypt algorithm cost factor for auth password hashing (default 10).' },
  'help': { kind: 'bool', help: 'Show this help.' },
  'version': { kind: 'bool', help: 'Print the version and exit.' },
};

/** Go's strconv.ParseBool, as etcd's flag package reads booleans: 1/0, t/f, true/false in three spellings. */
const GO_TRUE = new Set(['1', 't', 'T', 'true', 'TRUE', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'false', 'FALSE', 'False']);

export function parseGoBool(flag: string, v: string | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (GO_TRUE.has(v)) return true;
  if (GO_FALSE.has(v)) return false;
  throw new ConfigError(`invalid boolean value "${v}" for -${flag}: parse error`);
}

export interface ParsedArgs {
  config: Config;
  help: boolean;
  version: boolean;
  /** What etcd would warn about (flags it ignores), to log once the logger is up. */
  warnings: string[];
}

export function kindOf(name: string): string | undefined {
  return FLAGS[name]?.kind ?? ETCD_FLAGS[name]?.kind ?? (ETCD_IGNORED_FLAGS.includes(name) ? 'bool' : undefined);
}

/** An etcd flag etsd does not implement: refused with its reason, or accepted after checking its value's syntax. */
function checkEtcdFlag(name: string, value: string): void {
  const kind = ETCD_FLAGS[name]!.kind;
  if (kind === 'bool') parseGoBool(name, value, false);
  else if (kind === 'int' && !/^-?\d+$/.test(value)) throw new ConfigError(`invalid value "${value}" for flag -${name}: parse error`);
  else if (kind === 'duration' && value !== '0') parseDuration(value, name);
  const why = refusal(name, value);
  if (why !== null) throw new ConfigError(why);
}

/** Parses etcd-style flags: --flag=value, --flag value, -flag value; booleans bare or =true/false. */
export function parseArgs(argv: string[]): ParsedArgs {
  // etcd's gRPC proxy subcommand: refused by name rather than as a bad flag (`gateway` is src/cli/gateway-command.ts).
  if (argv[0] === 'grpc-proxy') {
    throw new ConfigError('"etcd grpc-proxy" (etcd\'s gRPC proxy) is not implemented by etsd; point clients at the members\' client URLs');
  }
  const raw = new Map<string, string>();
  const warnings: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) throw new ConfigError(`'${arg}' is not a valid flag`);
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const kind = kindOf(name);
    if (!kind) throw new ConfigError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (kind === 'bool') value = 'true';
    else {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`flag needs an argument: -${name}`);
      value = next;
    }
    if (ETCD_IGNORED_FLAGS.includes(name)) warnings.push(`flag "-${name}" is no longer supported - ignoring.`);
    else if (!FLAGS[name] && ETCD_FLAGS[name]) checkEtcdFlag(name, value);
    else raw.set(name, value);
  }
  // The config file and ETCD_* variables are turned into flags before this (config-sources.ts).
  if (raw.has('config-file')) throw new ConfigError('--config-file must be resolved by resolveArgs before parseArgs');
  const str = (k: string, d: string) => raw.get(k) ?? d;
  const int = (k: string, d: number) => {
    const v = raw.get(k);
    if (v === undefined) return d;
    if (!/^\d+$/.test(v)) throw new ConfigError(`invalid value "${v}" for flag -${k}: parse error`);
    return Number(v);
  };
  const signedInt = (k: string, d: number) => {
    const v = raw.get(k);
    if (v === undefined) return d;
    if (!/^-?\d+$/.test(v)) throw new ConfigError(`invalid value "${v}" for flag -${k}: parse error`);
    return Number(v);
  };
  const list = (k: string, d: string) => str(k, d).split(',').map((s) => s.trim()).filter(Boolean);
  const bool = (k: string, d = false) => parseGoBool(k, raw.get(k), d);

  const name = str('name', 'default');
  const dataDir = str('data-dir', `${name}.etsd`);
  const listenClientUrls = list('listen-client-urls', 'http://127.0.0.1:2379');
  const advertiseClientUrls = list('advertise-client-urls', raw.has('listen-client-urls') ? listenClientUrls.join(',') : 'http://127.0.0.1:2379');
  const listenPeerUrls = list('listen-peer-urls', 'http://127.0.0.1:2380');
  const initialAdvertisePeerUrls = list('initial-advertise-peer-urls', 'http://127.0.0.1:2380');
  const initialCluster = parseInitialCluster(str('initial-cluster', `${name}=${initialAdvertisePeerUrls.join(',')}`));
  const state = str('initial-cluster-state', 'new');
  if (state !== 'new' && state !== 'existing') {
    throw new ConfigError(`invalid value "${state}" for flag -initial-cluster-state: valid values are "new", "existing"`);
  }
  const logLevel = bool('debug') ? 'debug' : str('log-level', 'info');
  if (!['debug', 'info', 'warn', 'error', 'panic', 'fatal'].includes(logLevel)) {
    throw new ConfigError(`unknown log level "${logLevel}"`);
  }
  const shards = int('shards', Math.max(1, availableParallelism() - 1));
  if (shards < 1 || shards > 64) throw new ConfigError('--shards must be between 1 and 64');
  const maxRequestBytes = int('max-request-bytes', 1.5 * 1024 * 1024);
  if (maxRequestBytes < 1) throw new ConfigError('--max-request-bytes must be positive');
  if (maxRequestBytes > 256 * 1024 * 1024) throw new ConfigError('--max-request-bytes above 256 MiB is not supported');

  let tls: TlsSettings;
  try {
    tls = parseTlsFlags(raw, listenClientUrls, listenPeerUrls);
  } catch (err) {
    if (err instanceof TlsConfigError) throw new ConfigError(err.message);
    throw err;
  }
  let authToken: AuthTokenSpec;
  try {
    authToken = parseAuthTokenFlag(str('auth-token', 'simple'));
  } catch (err) {
    // etcd logs why, then fails with ErrInvalidAuthOpts: both here.
    if (err instanceof AuthTokenFlagError) throw new ConfigError(`${INVALID_AUTH_OPTS} (${err.message})`);
    throw err;
  }

  const config: Config = {
    name,
    dataDir,
    walDir: str('wal-dir', ''),
    listenClientUrls,
    advertiseClientUrls,
    listenPeerUrls,
    initialAdvertisePeerUrls,
    initialCluster,
    initialClusterState: state,
    initialClusterToken: str('initial-cluster-token', 'etcd-cluster'),
    maxRequestBytes,
    maxTxnOps: int('max-txn-ops', 128),
    logLevel: logLevel as Config['logLevel'],
    shards,
    maxPendingProposals: 5000,
    heartbeatIntervalMs: int('heartbeat-interval', 100),
    electionTimeoutMs: int('election-timeout', 1000),
    preVote: bool('pre-vote', true),
    busyPoll: bool('busy-poll', false),
    snapshotCount: int('snapshot-count', 100_000),
    snapshotCatchupEntries: int('experimental-snapshot-catchup-entries', 5000),
    strictReconfigCheck: bool('strict-reconfig-check', true),
    maxLearners: int('experimental-max-learners', 1),
    authToken,
    authTokenTtlMs: int('auth-token-ttl', 300) * 1000,
    bcryptCost: int('bcrypt-cost', 10),
    autoCompaction: parseAutoCompaction(str('auto-compaction-mode', 'periodic'), str('auto-compaction-retention', '0')),
    watchProgressNotifyIntervalMs: parseDuration(
      raw.get('watch-progress-notify-interval') ?? raw.get('experimental-watch-progress-notify-interval') ?? '10m',
      'watch-progress-notify-interval'),
    listenMetricsUrls: list('listen-metrics-urls', ''),
    maxConcurrentStreams: int('max-concurrent-streams', 0xffffffff),
    logOutputs: list('log-outputs', raw.get('log-output') ?? 'default'),
    initialCorruptCheck: bool('experimental-initial-corrupt-check'),
    corruptCheckTimeMs: raw.get('experimental-corrupt-check-time') === '0' ? 0 : parseDuration(str('experimental-corrupt-check-time', '0s'), 'experimental-corrupt-check-time'),
    forceNewCluster: bool('force-new-cluster'),
    quotaBackendBytes: signedInt('quota-backend-bytes', 0),
    tls,
  };
  for (const u of config.listenMetricsUrls) {
    if (!/^https?:\/\/[^/]+:\d+\/?$/.test(u)) throw new ConfigError(`--listen-metrics-urls: "${u}" is not http://host:port`);
    if (u.startsWith('https:')) throw new ConfigError('--listen-metrics-urls: https is not implemented yet');
  }
  if (config.maxConcurrentStreams < 1 || config.maxConcurrentStreams > 0xffffffff) throw new ConfigError('--max-concurrent-streams must be between 1 and 4294967295');
  if (!initialCluster.has(name)) {
    throw new ConfigError(`couldn't find local name "${name}" in the initial cluster configuration`);
  }
  if (config.snapshotCount < 1) throw new ConfigError('--snapshot-count must be positive');
  if (config.snapshotCatchupEntries < 1) throw new ConfigError('--experimental-snapshot-catchup-entries must be positive');
  if (config.electionTimeoutMs < 5 * config.heartbeatIntervalMs) {
    throw new ConfigError(`--election-timeout[${config.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${config.heartbeatIntervalMs}ms]`);
  }
  return { config, help: bool('help'), version: bool('version'), warnings };
}

/** Go-style durations: 10m, 1.5s, 500ms, 1h2m. */
export function parseDuration(s: string, flag: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * units[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed !== s.length || s.length === 0) throw new ConfigError(`invalid value "${s}" for flag -${flag}: parse error`);
  return total;
}

/**
 * etcd's parseCompactionRetention: a whole number is hours (periodic) or
 * revisions (revision); anything else is a Go duration (and, in revision mode,
 * etcd then takes the duration's nanoseconds as the revision count: mirrored).
 */
export function parseAutoCompaction(mode: string, retention: string): AutoCompaction | null {
  if (mode !== 'periodic' && mode !== 'revision') throw new ConfigError(`unknown auto-compaction-mode "${mode}"`);
  let amount: number;
  if (/^\d+$/.test(retention)) {
    amount = mode === 'periodic' ? Number(retention) * 3600_000 : Number(retention);
  } else {
    let ms: number;
    try {
      ms = parseDuration(retention, 'auto-compaction-retention');
    } catch {
      throw new ConfigError(`error parsing CompactionRetention: time: invalid duration "${retention}"`);
    }
    amount = mode === 'periodic' ? ms : ms * 1e6;
  }
  if (amount <= 0) return null;
  return mode === 'periodic' ? { mode, retentionMs: amount } : { mode, revisions: amount };
}

function parseInitialCluster(s: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`invalid --initial-cluster entry "${part}"`);
    const n = part.slice(0, eq);
    const urls = out.get(n) ?? [];
    urls.push(part.slice(eq + 1));
    out.set(n, urls);
  }
  return out;
}

export function usage(): string {
  const lines = ['Usage: etsd [flags]', '', 'Flags (spelled as etcd\'s):'];
  for (const [name, spec] of Object.entries(FLAGS)) lines.push(`  --${name}${spec.kind === 'bool' ? '' : ' <' + spec.kind + '>'}\n        ${spec.help}`);
  return lines.join('\n');
}
