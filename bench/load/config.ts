// The benchmark's configuration, shared by the CLI, the runner, the worker
// threads (it travels as workerData, so plain data only) and compare.ts.

import type { TlsFiles } from './conn-types.js';

export const WORKLOADS = ['put', 'range', 'txn-put', 'kube', 'watch-latency', 'lease-keepalive', 'authenticate'] as const;
export type WorkloadName = typeof WORKLOADS[number];

export interface BenchConfig {
  workload: WorkloadName;
  transport: 'raw' | 'node';  // HTTP/2 client: our own framing, or node:http2
  label: string;               // series name in reports and plots
  endpoints: string[];         // host:port
  conns: number;               // HTTP/2 sessions in total
  clients: number;             // concurrent outstanding requests in total
  threads: number;             // worker threads (never more than conns)
  total: number;               // measured requests; 0 = run for durationSec
  durationSec: number;
  warmupSec: number;
  rate: number;                // requests/s in total; 0 = closed loop
  keySize: number;
  valSize: number;
  keySpaceSize: number;
  sequentialKeys: boolean;
  consistency: 'l' | 's';
  rangeKey: string;            // range: first key ('' = random key of the key space)
  rangeEnd: string;            // range: range_end ('' = single key)
  rangeLimit: number;
  prefill: boolean;            // range/kube: write the key space before measuring
  txnOps: number;              // txn-put: puts per txn
  kubeMix: [number, number, number]; // kube: update:get:list weights
  listLimit: number;           // kube: limit of each list
  watchers: number;            // watch-latency: watch streams in total
  keyPrefix: string;
  drainTimeoutSec: number;     // how long to wait for in-flight requests at the end
  tls: TlsFiles | null;        // client TLS (--cacert/--cert/--key); null = h2c
  user: string;                // NAME:PASSWORD: each thread authenticates and sends the token ('' = none);
                               // authenticate: the credentials every call presents
}

export const DEFAULTS: BenchConfig = {
  workload: 'put',
  transport: 'raw',
  label: '',
  endpoints: ['127.0.0.1:2379'],
  conns: 1,
  clients: 1,
  threads: 2,
  total: 10000,
  durationSec: 0,
  warmupSec: 0,
  rate: 0,
  keySize: 8,
  valSize: 8,
  keySpaceSize: 1,
  sequentialKeys: false,
  consistency: 'l',
  rangeKey: '',
  rangeEnd: '',
  rangeLimit: 0,
  prefill: false,
  txnOps: 1,
  kubeMix: [30, 50, 20],
  listLimit: 100,
  watchers: 10,
  keyPrefix: '',
  drainTimeoutSec: 10,
  tls: null,
  user: '',
};

/** Checks limits; returns a list of problems (empty when valid). */
export function validate(c: BenchConfig): string[] {
  const p: string[] = [];
  const int = (name: string, v: number, min: number, max: number): void => {
    if (!Number.isInteger(v) || v < min || v > max) p.push(`--${name} must be an integer in [${min}, ${max}] (got ${v})`);
  };
  if (c.endpoints.length === 0) p.push('--endpoints is empty');
  int('conns', c.conns, 1, 10000);
  int('clients', c.clients, 1, 100000);
  int('threads', c.threads, 1, 64);
  int('total', c.total, 0, 1e9);
  int('key-size', c.keySize, 1, 1 << 20);
  int('val-size', c.valSize, 0, 1.5 * (1 << 20));
  int('key-space-size', c.keySpaceSize, 1, 1e9);
  int('txn-ops', c.txnOps, 1, 128);
  int('watchers', c.watchers, 0, 100000);
  if (c.clients < c.conns) p.push('--clients must be >= --conns');
  if (c.total === 0 && !(c.durationSec > 0)) p.push('give --total or --duration');
  if (c.rate < 0) p.push('--rate must be >= 0');
  if (String(c.keySpaceSize - 1).length + c.keyPrefix.length > c.keySize && c.workload !== 'kube')
    p.push(`--key-size ${c.keySize} is too small for --key-space-size ${c.keySpaceSize} with prefix '${c.keyPrefix}'`);
  if (c.workload === 'authenticate' && c.user === '') p.push('authenticate needs --user NAME:PASSWORD');
  if (c.kubeMix.some((w) => !(w >= 0)) || c.kubeMix.every((w) => w === 0)) p.push('--kube-mix needs non-negative weights, not all zero');
  return p;
}

/** The key for index i: prefix then the zero-padded decimal index, keySize bytes. */
export function keyName(c: BenchConfig, i: number): string {
  const digits = Math.max(1, c.keySize - c.keyPrefix.length);
  return c.keyPrefix + String(i).padStart(digits, '0');
}
