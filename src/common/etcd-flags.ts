// Every etcd 3.4 flag that etsd does not implement in config.ts (FLAGS), with
// what etsd does when it is given: accept it with the meaning it has for etsd
// (stated here and in the README's flag table), or refuse it at start with a
// message naming the flag and why. A flag that is ignored in silence is worse
// than an error (a security or durability setting the operator believes is on),
// so nothing here is dropped without a word.

export type EtcdFlagKind = 'string' | 'int' | 'list' | 'bool' | 'duration';

export interface EtcdFlag {
  kind: EtcdFlagKind;
  /** What the flag means for etsd when accepted (README). */
  meaning: string;
  /** Why a value is refused; null when etsd accepts it. Absent: every value is accepted. */
  refuse?: (value: string) => string | null;
}

/** Accepts the flag's off/empty value; refuses any other with `why`. */
const onlyOff = (why: string) => (v: string): string | null => (v === '' || v === 'false' || v === '0' || v === 'f' || v === 'F' || v === 'FALSE' || v === 'False' ? null : why);
/** Accepts only the empty (default) value. */
const onlyEmpty = (why: string) => (v: string): string | null => (v === '' ? null : why);
const oneOf = (values: string[], why: string) => (v: string): string | null => (values.includes(v) ? null : why);

export const ETCD_FLAGS: Record<string, EtcdFlag> = {
  // logging
  'logger': { kind: 'string', meaning: 'zap or capnslog: etsd writes structured JSON lines either way', refuse: oneOf(['zap', 'capnslog'], 'valid values are "zap" and "capnslog"') },
  'log-package-levels': { kind: 'string', meaning: 'capnslog per-package levels: etsd has one level (--log-level); accepted for compatibility, no effect' },
  // storage
  'max-snapshots': { kind: 'int', meaning: 'etsd keeps no snapshot files (state lives in RocksDB; follower snapshots are made on demand and deleted): no effect' },
  'max-wals': { kind: 'int', meaning: 'etsd deletes WAL segments once applied and synced: no effect' },
  'backend-batch-interval': { kind: 'duration', meaning: 'etsd commits one RocksDB batch per apply-ring drain: no effect' },
  'backend-batch-limit': { kind: 'int', meaning: 'etsd commits one RocksDB batch per apply-ring drain: no effect' },
  'experimental-backend-bbolt-freelist-type': { kind: 'string', meaning: 'no bbolt backend (RocksDB): no effect' },
  'experimental-compaction-batch-limit': { kind: 'int', meaning: 'compaction sweeps in its own batches: no effect' },
  'unsafe-no-fsync': { kind: 'bool', meaning: 'etsd always fsyncs its WAL', refuse: onlyOff('etsd always fsyncs; it has no unsafe mode') },
  // raft and leases
  'initial-election-tick-advance': { kind: 'bool', meaning: 'etsd campaigns after one randomized election timeout on a fresh start (as etcd with advance): no effect' },
  'experimental-enable-lease-checkpoint': { kind: 'bool', meaning: 'etsd persists lease expiry refreshes through the log: always on' },
  'experimental-enable-lease-checkpoint-persist': { kind: 'bool', meaning: 'etsd persists lease expiry refreshes through the log: always on' },
  'experimental-warning-apply-duration': { kind: 'duration', meaning: 'slow applies show in the stage histograms (/metrics): no log warning' },
  // gRPC
  'grpc-keepalive-min-time': { kind: 'duration', meaning: 'etsd does not police client pings: no effect' },
  'grpc-keepalive-interval': { kind: 'duration', meaning: 'etsd sends no server pings: no effect' },
  'grpc-keepalive-timeout': { kind: 'duration', meaning: 'etsd sends no server pings: no effect' },
  'enable-grpc-gateway': { kind: 'bool', meaning: 'the JSON gateway', refuse: (v) => (v === 'false' ? 'the gateway cannot be turned off' : null) },
  // v2, proxies and discovery
  'enable-v2': { kind: 'bool', meaning: 'the v2 API', refuse: onlyOff('the v2 API is not served (etcd 3.4 also has it off by default)') },
  'experimental-enable-v2v3': { kind: 'string', meaning: 'v2 emulation', refuse: onlyEmpty('the v2 API is not served') },
  'discovery': { kind: 'string', meaning: 'discovery', refuse: onlyEmpty('discovery is not supported; use --initial-cluster') },
  'discovery-fallback': { kind: 'string', meaning: 'discovery', refuse: (v) => (v === '' || v === 'proxy' ? null : 'discovery is not supported') },
  'discovery-proxy': { kind: 'string', meaning: 'discovery', refuse: onlyEmpty('discovery is not supported') },
  'discovery-srv': { kind: 'string', meaning: 'DNS discovery', refuse: onlyEmpty('DNS SRV discovery is not supported; use --initial-cluster') },
  'discovery-srv-name': { kind: 'string', meaning: 'DNS discovery', refuse: onlyEmpty('DNS SRV discovery is not supported') },
  'proxy': { kind: 'string', meaning: 'the v2 proxy', refuse: oneOf(['off', ''], 'the v2 proxy is not supported') },
  'proxy-failure-wait': { kind: 'int', meaning: 'the v2 proxy (off): no effect' },
  'proxy-refresh-interval': { kind: 'int', meaning: 'the v2 proxy (off): no effect' },
  'proxy-dial-timeout': { kind: 'int', meaning: 'the v2 proxy (off): no effect' },
  'proxy-write-timeout': { kind: 'int', meaning: 'the v2 proxy (off): no effect' },
  'proxy-read-timeout': { kind: 'int', meaning: 'the v2 proxy (off): no effect' },
  // HTTP
  'cors': { kind: 'list', meaning: 'CORS origins', refuse: (v) => (v === '' || v === '*' ? null : 'CORS origin lists are not supported') },
  'host-whitelist': { kind: 'list', meaning: 'Host header check', refuse: (v) => (v === '' || v === '*' ? null : 'Host header allow-lists are not supported') },
  'metrics': { kind: 'string', meaning: 'basic or extensive: etsd serves the same set for both (etcd metric names plus per-stage histograms)', refuse: oneOf(['basic', 'extensive'], 'valid values are "basic" and "extensive"') },
  'enable-pprof': { kind: 'bool', meaning: 'Go pprof', refuse: onlyOff('there is no pprof in Node; profile with node --cpu-prof') },
};

/** etcd 3.4 flags it registers only to ignore them (v0.4 leftovers): etcd accepts and drops them; so does etsd. */
export const ETCD_IGNORED_FLAGS = [
  'cluster-active-size', 'cluster-remove-delay', 'cluster-sync-interval', 'config', 'force', 'max-result-buffer',
  'max-retry-attempts', 'peer-heartbeat-interval', 'peer-election-timeout', 'retry-interval', 'snapshot', 'v', 'vv',
  // for coverage testing
  'test.coverprofile', 'test.outputdir',
];

/** The refusal for `--name=value`, or null if etsd accepts it. */
export function refusal(name: string, value: string): string | null {
  const f = ETCD_FLAGS[name];
  if (!f || !f.refuse) return null;
  const why = f.refuse(value);
  return why === null ? null : `--${name}${value === '' ? '' : `=${value}`} is not supported by etsd: ${why}`;
}

/** The README's table of these flags (scripts/flag-table.mjs writes it; a unit test keeps it true). */
export function etcdFlagTable(): string {
  const rows = ['| flag | etsd |', '|---|---|'];
  for (const [name, f] of Object.entries(ETCD_FLAGS).sort(([a], [b]) => a.localeCompare(b))) {
    let what: string;
    if (!f.refuse) what = `accepted: ${f.meaning}`;
    else {
      const offValue = f.kind === 'bool' ? 'false' : f.kind === 'int' ? '0' : '';
      const whyOn = f.refuse(f.kind === 'bool' ? 'true' : 'x-not-a-default');
      const offOk = f.refuse(offValue) === null;
      what = offOk ? `refused unless off/empty: ${whyOn ?? f.meaning}` : `${f.meaning}; refused: ${whyOn}`;
      if (whyOn === null) what = `accepted (${f.meaning}); some values refused: ${f.refuse(f.kind === 'bool' ? 'false' : '') ?? ''}`;
    }
    rows.push(`| \`--${name}\` | ${what.replace(/\|/g, '/')} |`);
  }
  rows.push(`| ${ETCD_IGNORED_FLAGS.map((n) => `\`--${n}\``).join(', ')} | ignored with a warning, as etcd 3.4 ignores them |`);
  return rows.join('\n');
}
