// Where an etcd member's configuration comes from, in etcd 3.4's order:
//  - a YAML config file (--config-file, or ETCD_CONFIG_FILE when that flag is
//    absent): then every other flag and environment variable is ignored;
//  - otherwise the command line, with ETCD_* environment variables filling
//    the flags it does not set. A variable that names a flag also given on the
//    command line is fatal; an ETCD_* variable that names no flag is a warning.
// The result is a command line for parseArgs, plus etcd's log lines to write
// once the logger is up.
import { createRequire } from 'node:module';
import { ConfigError, FLAGS, kindOf } from './config.js';
import { ETCD_FLAGS, ETCD_IGNORED_FLAGS } from './etcd-flags.js';

export interface SourceNote { level: 'info' | 'warn'; msg: string }
export interface ResolvedArgs { argv: string[]; notes: SourceNote[]; configFile: string | null }

/** etcd's flags.FlagToEnv: ETCD_ + the name upper-cased with dashes as underscores. */
export function flagToEnv(name: string): string {
  return 'ETCD_' + name.toUpperCase().replace(/-/g, '_');
}

function allFlagNames(): string[] {
  return [...Object.keys(FLAGS), ...Object.keys(ETCD_FLAGS), ...ETCD_IGNORED_FLAGS];
}

/** The flags set on a command line, with the value given to --config-file if any. */
function scan(argv: string[]): { set: Set<string>; configFile: string | null } {
  const set = new Set<string>();
  let configFile: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) continue;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (kindOf(name) !== 'bool' && kindOf(name) !== undefined) value = argv[++i];
    set.add(name);
    if (name === 'config-file' && value !== undefined) configFile = value;
  }
  return { set, configFile };
}

/** The command line etsd runs with, from argv, the environment and (if named) the config file. */
export function resolveArgs(argv: string[], env: NodeJS.ProcessEnv, readFile: (path: string) => string): ResolvedArgs {
  const { set, configFile: flagFile } = scan(argv);
  const configFile = flagFile ?? (env.ETCD_CONFIG_FILE ? env.ETCD_CONFIG_FILE : null);
  if (configFile !== null) {
    const notes: SourceNote[] = [{
      level: 'info',
      msg: `loaded server configuration, other configuration command line flags and environment variables will be ignored if provided (path ${configFile})`,
    }];
    const ignored = [...set].filter((n) => n !== 'config-file');
    if (ignored.length > 0) notes.push({ level: 'warn', msg: `ignored because a config file is given: ${ignored.map((n) => `--${n}`).join(', ')}` });
    return { argv: argsFromConfigFile(configFile, readFile, notes), notes, configFile };
  }
  const out = argv.filter((a) => !/^--?config-file(=|$)/.test(a));
  const notes: SourceNote[] = [];
  const used = new Set<string>();
  for (const name of allFlagNames()) {
    if (name === 'config-file' || set.has(name)) continue;
    const key = flagToEnv(name);
    const val = env[key];
    if (val === undefined || val === '') continue;
    used.add(key);
    out.push(`--${name}=${val}`);
    notes.push({ level: 'info', msg: `recognized and used environment variable ${key}=${val}` });
  }
  const shadowing = new Set([...set].map(flagToEnv));
  for (const [key, val] of Object.entries(env)) {
    if (used.has(key)) continue;
    if (shadowing.has(key)) {
      throw new ConfigError(`conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`);
    }
    if (key.startsWith('ETCD_') && key !== 'ETCD_CONFIG_FILE') notes.push({ level: 'warn', msg: `unrecognized environment variable ${key}=${val ?? ''}` });
  }
  return { argv: out, notes, configFile: null };
}

/** etcd's YAML keys whose Go type is time.Duration: a number there is nanoseconds. */
const DURATION_KEYS = new Set([
  'grpc-keepalive-min-time', 'grpc-keepalive-interval', 'grpc-keepalive-timeout', 'backend-batch-interval',
  'experimental-corrupt-check-time', 'experimental-watch-progress-notify-interval', 'experimental-warning-apply-duration',
]);

/** The TLS sections of etcd's config file and the flags their keys stand for. */
const SECURITY_SECTIONS: Record<string, string> = { 'client-transport-security': '', 'peer-transport-security': 'peer-' };
const SECURITY_KEYS: Record<string, string> = {
  'cert-file': 'cert-file', 'key-file': 'key-file', 'client-cert-auth': 'client-cert-auth',
  'trusted-ca-file': 'trusted-ca-file', 'auto-tls': 'auto-tls',
};

function scalar(key: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number' && Number.isFinite(v)) return DURATION_KEYS.has(key) ? `${v}ns` : String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join(',');
  throw new ConfigError(`error unmarshaling config file: bad value for "${key}"`);
}

/** The YAML parser, loaded only when a config file is given (it slows every start otherwise). */
function parseYaml(): (text: string) => unknown {
  const yaml = createRequire(import.meta.url)('yaml') as { parse: (text: string) => unknown };
  return yaml.parse;
}

/** etcd's config file as a command line: each known key becomes --key=value (null values keep the default). */
function argsFromConfigFile(path: string, readFile: (path: string) => string, notes: SourceNote[]): string[] {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`open ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml()(text);
  } catch (err) {
    throw new ConfigError(`error converting YAML to JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('error unmarshaling config file: not a mapping');
  const args: string[] = [];
  for (const [key, v] of Object.entries(doc as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    const prefix = SECURITY_SECTIONS[key];
    if (prefix !== undefined) {
      if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`error unmarshaling config file: "${key}" is not a mapping`);
      for (const [k, sv] of Object.entries(v as Record<string, unknown>)) {
        const flag = SECURITY_KEYS[k];
        if (!flag) { notes.push({ level: 'warn', msg: `unknown key "${key}.${k}" in the config file (etcd ignores it too)` }); continue; }
        if (sv === null || sv === undefined || sv === '' || sv === false) continue;
        args.push(`--${prefix}${flag}=${scalar(k, sv)}`);
      }
      continue;
    }
    if (key === 'config-file') continue;
    if (kindOf(key) === undefined) { notes.push({ level: 'warn', msg: `unknown key "${key}" in the config file (etcd ignores it too)` }); continue; }
    args.push(`--${key}=${scalar(key, v)}`);
  }
  return args;
}
