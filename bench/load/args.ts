// Command-line flags -> BenchConfig. Flag names follow etcd's tools/benchmark.
import { parseArgs } from 'node:util';
import { DEFAULTS, WORKLOADS, validate, type BenchConfig, type WorkloadName } from './config.js';

export const USAGE = `usage: etsd-bench <workload> [flags]
workloads: ${WORKLOADS.join(', ')}

connection and load
  --endpoints h:p,h:p   gRPC endpoints (default 127.0.0.1:2379)
  --conns N             HTTP/2 sessions (default 1)
  --clients N           concurrent requests, spread over the sessions (default 1)
  --threads N           load worker threads (default 2, at most --conns)
  --total N             measured requests (default 10000)
  --duration T          run for T instead of --total (e.g. 10s, 500ms, 1m)
  --warmup T            unmeasured warm-up before the measured window (default 0)
  --rate R              open loop: R requests/s in total; latency counts from the
                        intended send time (default 0 = closed loop)
keys and values
  --key-size N  --val-size N  --key-space-size N  --sequential-keys  --key-prefix S
range
  --consistency l|s     linearizable or serializable (default l)
  --key K --range-end E --limit N   fixed key or [K, E); default random keys of the key space
  --prefill             put the whole key space first
txn-put:  --txn-ops N   puts per txn (default 1)
kube:     --kube-mix U:G:L  weights of update/get/list (default 30:50:20)
          --list-limit N (default 100); default key space 1000, values 1024 B
watch-latency: --watchers N (default 10); puts at --rate (default 100/s)
authenticate: every request is an Authenticate with --user's name and password (bcrypt on the server)
TLS and auth (as etcdctl)
  --cacert F --cert F --cert-key F   client TLS with these PEM files (all three; --key is range's)
  --user NAME:PASSWORD          each load thread authenticates once and sends the token with every request
output
  --transport raw|node  HTTP/2 client: built-in framing (default, ~10x cheaper) or node:http2
  --label S  --out results.json  --plot plot.svg  --drain-timeout T (default 10s)
`;

export interface CliOptions { cfg: BenchConfig; out: string; plot: string }

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration '${s}'`);
  const v = Number(m[1]);
  return m[2] === 'ms' ? v / 1000 : m[2] === 'm' ? v * 60 : v;
}

const FLAGS = {
  endpoints: { type: 'string' }, conns: { type: 'string' }, clients: { type: 'string' }, threads: { type: 'string' },
  total: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, rate: { type: 'string' },
  'key-size': { type: 'string' }, 'val-size': { type: 'string' }, 'key-space-size': { type: 'string' },
  'sequential-keys': { type: 'boolean' }, 'key-prefix': { type: 'string' }, consistency: { type: 'string' },
  key: { type: 'string' }, 'range-end': { type: 'string' }, limit: { type: 'string' }, prefill: { type: 'boolean' },
  'txn-ops': { type: 'string' }, 'kube-mix': { type: 'string' }, 'list-limit': { type: 'string' },
  watchers: { type: 'string' }, label: { type: 'string' }, out: { type: 'string' }, plot: { type: 'string' },
  'drain-timeout': { type: 'string' }, transport: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  cacert: { type: 'string' }, cert: { type: 'string' }, 'cert-key': { type: 'string' }, user: { type: 'string' },
} as const;

export type FlagValues = Partial<Record<keyof typeof FLAGS, string | boolean>>;

export function parseFlags(argv: string[]): { positionals: string[]; values: FlagValues } {
  const { values, positionals } = parseArgs({ args: argv, options: FLAGS, allowPositionals: true, strict: true });
  return { values: values as FlagValues, positionals };
}

/** Builds a config for `workload` from flag values, with per-workload defaults. */
export function configFrom(workload: WorkloadName, v: FlagValues): BenchConfig {
  const num = (k: keyof typeof FLAGS, d: number): number => (typeof v[k] === 'string' ? Number(v[k]) : d);
  const str = (k: keyof typeof FLAGS, d: string): string => (typeof v[k] === 'string' ? (v[k] as string) : d);
  const kube = workload === 'kube';
  const keyPrefix = str('key-prefix', kube ? '/registry/pods/bench/' : '');
  const keySpaceSize = num('key-space-size', kube ? 1000 : DEFAULTS.keySpaceSize);
  const minKeySize = keyPrefix.length + String(Math.max(0, keySpaceSize - 1)).length;
  const duration = typeof v.duration === 'string' ? parseDuration(v.duration) : 0;
  const cfg: BenchConfig = {
    ...DEFAULTS,
    workload,
    transport: str('transport', 'raw') === 'node' ? 'node' : 'raw',
    label: str('label', ''),
    endpoints: str('endpoints', DEFAULTS.endpoints.join(',')).split(',').map((e) => e.trim().replace(/^https?:\/\//, '')).filter(Boolean),
    conns: num('conns', DEFAULTS.conns),
    clients: num('clients', DEFAULTS.clients),
    threads: num('threads', DEFAULTS.threads),
    total: duration > 0 && v.total === undefined ? 0 : num('total', DEFAULTS.total),
    durationSec: duration,
    warmupSec: typeof v.warmup === 'string' ? parseDuration(v.warmup) : 0,
    rate: num('rate', workload === 'watch-latency' ? 100 : 0),
    keySize: num('key-size', kube ? minKeySize : Math.max(DEFAULTS.keySize, minKeySize)),
    valSize: num('val-size', kube ? 1024 : DEFAULTS.valSize),
    keySpaceSize,
    sequentialKeys: v['sequential-keys'] === true,
    consistency: str('consistency', 'l') === 's' ? 's' : 'l',
    rangeKey: str('key', ''),
    rangeEnd: str('range-end', ''),
    rangeLimit: num('limit', 0),
    prefill: v.prefill === true,
    txnOps: num('txn-ops', 1),
    kubeMix: str('kube-mix', '30:50:20').split(':').map(Number) as [number, number, number],
    listLimit: num('list-limit', 100),
    watchers: num('watchers', 10),
    keyPrefix,
    drainTimeoutSec: typeof v['drain-timeout'] === 'string' ? parseDuration(v['drain-timeout']) : DEFAULTS.drainTimeoutSec,
    tls: tlsFiles(v),
    user: str('user', ''),
  };
  if (!['raw', 'node'].includes(str('transport', 'raw'))) throw new Error('--transport must be raw or node');
  if (!['l', 's'].includes(str('consistency', 'l'))) throw new Error('--consistency must be l or s');
  if (cfg.kubeMix.length !== 3) throw new Error('--kube-mix needs three weights U:G:L');
  if (duration > 0 && v.total !== undefined) throw new Error('give --total or --duration, not both');
  const problems = validate(cfg);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return cfg;
}

function tlsFiles(v: FlagValues): BenchConfig['tls'] {
  const [ca, cert, key] = [v.cacert, v.cert, v['cert-key']];
  if (ca === undefined && cert === undefined && key === undefined) return null;
  if (typeof ca !== 'string' || typeof cert !== 'string' || typeof key !== 'string') throw new Error('TLS needs all of --cacert, --cert and --cert-key');
  return { ca, cert, key };
}

export function parseCli(argv: string[]): CliOptions | null {
  const { positionals, values } = parseFlags(argv);
  if (values.help || positionals.length === 0) return null;
  const w = positionals[0] as WorkloadName;
  if (!WORKLOADS.includes(w)) throw new Error(`unknown workload '${positionals[0]}'`);
  if (positionals.length > 1) throw new Error(`unexpected argument '${positionals[1]}'`);
  return { cfg: configFrom(w, values), out: typeof values.out === 'string' ? values.out : '', plot: typeof values.plot === 'string' ? values.plot : '' };
}
