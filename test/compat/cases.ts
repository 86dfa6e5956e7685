// Parser for cases.txt and the output normalizer of the differential
// compatibility suite. Pure: no processes, no sockets (file reading is left
// to the caller), so both halves can be unit-tested on their own.
//
// Case file format (see README.md):
//
//   # comment
//   name | etcdctl args | optional stdin      a case; this line is its first step
//        | etcdctl args | optional stdin      (empty name) the next step of that case
//        | &ID etcdctl args | optional stdin  a background etcdctl, named ID
//        | @wait ID N                         wait until ID printed N stdout lines
//        | @kill ID                           SIGTERM to ID, wait for it to exit
//        | @sleep MS                          sleep MS milliseconds
//        | @until N etcdctl args              rerun args (not recorded) until N non-empty stdout lines
//        | @coarse-ttl                        this case tolerates remaining-TTL jitter
//
// - name: [A-Za-z0-9._-]+, unique in the file.
// - args: split like a shell: whitespace separates words; '...' is literal;
//   "..." and bare words understand the escapes below; an unquoted `|` ends
//   the args field. `$L<n>` (in args and stdin) is replaced at run time by
//   the hex id of the n-th lease id seen in this case's outputs.
// - stdin: the rest of the line, trimmed, with the escapes below decoded
//   (write a leading or trailing space as \x20). Absent = empty stdin.
//   A foreground step's stdin is closed after writing; a background step's
//   stdin stays open until the process is stopped (etcdctl watch -i exits on EOF).
//
// Escapes: \n \t \r \0 \\ \" \' \| \s (space) \xHH (one byte, any value).
// An argument must decode to valid UTF-8 without NUL bytes (argv cannot carry
// anything else); use stdin (e.g. `put key` reads the value from stdin) to
// send arbitrary bytes.

/** One step of a case. `run` and `bg` steps are recorded and compared; the others only steer timing. */
export type Step =
  | { readonly kind: 'run'; readonly line: number; readonly args: readonly string[]; readonly stdin: Buffer }
  | { readonly kind: 'bg'; readonly line: number; readonly id: string; readonly args: readonly string[]; readonly stdin: Buffer }
  | { readonly kind: 'wait'; readonly line: number; readonly id: string; readonly lines: number }
  | { readonly kind: 'kill'; readonly line: number; readonly id: string }
  | { readonly kind: 'sleep'; readonly line: number; readonly ms: number }
  | { readonly kind: 'until'; readonly line: number; readonly lines: number; readonly args: readonly string[] };

export type RecordedStep = Extract<Step, { kind: 'run' | 'bg' }>;

export interface CompatCase {
  /** The case file (as given to parseCases), for error messages. */
  readonly file: string;
  /** Unique name; becomes the test name. */
  readonly name: string;
  /** 1-based line number in the case file, for error messages. */
  readonly line: number;
  /** The steps, in order; at least one is recorded (run or bg). */
  readonly steps: readonly Step[];
  /** `@coarse-ttl`: remaining TTLs within max(2 s, 5% of it) below the granted TTL print as "~TTL". */
  readonly coarseTtl: boolean;
}

/** The recorded steps of a case (the ones whose output is compared). */
export function recordedSteps(c: CompatCase): RecordedStep[] {
  return c.steps.filter((s): s is RecordedStep => s.kind === 'run' || s.kind === 'bg');
}

/** A step as written in the case file, for reports. */
export function describeStep(s: Step): string {
  const q = (args: readonly string[]): string => args.map((x) => JSON.stringify(x)).join(' ');
  const stdin = (b: Buffer): string => (b.length > 0 ? ` with stdin ${JSON.stringify(b.toString('latin1'))}` : '');
  switch (s.kind) {
    case 'run': return `etcdctl ${q(s.args)}${stdin(s.stdin)}`;
    case 'bg': return `&${s.id} etcdctl ${q(s.args)}${stdin(s.stdin)}`;
    case 'wait': return `@wait ${s.id} ${s.lines}`;
    case 'kill': return `@kill ${s.id}`;
    case 'sleep': return `@sleep ${s.ms}`;
    case 'until': return `@until ${s.lines} etcdctl ${q(s.args)}`;
  }
}

/** Limits: a case file is small and hand-written. */
const MAX_CASES = 10_000;
const MAX_ARGS_PER_CASE = 64;
const MAX_STEPS_PER_CASE = 64;
/** Sum of @sleep per case: sleeps are the slow part of the suite. */
const MAX_SLEEP_PER_CASE_MS = 10_000;
const MAX_WAIT_LINES = 10_000;
const NAME_RE = /^[A-Za-z0-9._-]+$/;
const BG_ID_RE = /^[A-Za-z0-9_]+$/;

export class CaseParseError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'CaseParseError';
  }
}

/** Decodes one escape starting at text[i] === '\\'. Returns bytes and the next index. */
function decodeEscape(text: string, i: number, fail: (msg: string) => never): [number[], number] {
  const c = text[i + 1];
  switch (c) {
    case 'n': return [[0x0a], i + 2];
    case 't': return [[0x09], i + 2];
    case 'r': return [[0x0d], i + 2];
    case '0': return [[0x00], i + 2];
    case 's': return [[0x20], i + 2];
    case '\\': case '"': case "'": case '|': return [[c.charCodeAt(0)], i + 2];
    case 'x': {
      const hex = text.slice(i + 2, i + 4);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) fail(`bad \\x escape: expected two hex digits, got "${hex}"`);
      return [[parseInt(hex, 16)], i + 4];
    }
    case undefined: return fail('backslash at end of line');
    default: return fail(`unknown escape \\${c}`);
  }
}

/** Appends the UTF-8 bytes of one (possibly astral) character at text[i]. */
function pushChar(out: number[], text: string, i: number): number {
  const cp = text.codePointAt(i)!;
  const ch = String.fromCodePoint(cp);
  for (const b of Buffer.from(ch, 'utf8')) out.push(b);
  return i + ch.length;
}

/** Decodes a whole string of escapes (the stdin field) into bytes. */
export function decodeEscapes(text: string, fail: (msg: string) => never): Buffer {
  const out: number[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '\\') {
      const [bytes, next] = decodeEscape(text, i, fail);
      out.push(...bytes);
      i = next;
    } else {
      i = pushChar(out, text, i);
    }
  }
  return Buffer.from(out);
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function bytesToArg(bytes: number[], fail: (msg: string) => never): string {
  if (bytes.includes(0)) fail('an argument cannot contain a NUL byte (argv limitation); pass it on stdin');
  try {
    return utf8Strict.decode(Uint8Array.from(bytes));
  } catch {
    return fail('an argument must be valid UTF-8 (argv is passed as UTF-8); pass raw bytes on stdin');
  }
}

/**
 * Splits the args field shell-like. Stops at the first unquoted `|`.
 * Returns the words and the index just after the `|` (or -1 if none).
 */
export function splitArgs(text: string, fail: (msg: string) => never): { args: string[]; rest: number } {
  const args: string[] = [];
  let cur: number[] | null = null;
  let i = 0;
  const finish = (): void => {
    if (cur !== null) args.push(bytesToArg(cur, fail));
    cur = null;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      finish();
      i++;
    } else if (c === '|') {
      finish();
      return { args, rest: i + 1 };
    } else if (c === "'") {
      cur ??= [];
      const end = text.indexOf("'", i + 1);
      if (end < 0) fail('unterminated single quote');
      for (let j = i + 1; j < end; ) j = pushChar(cur, text, j);
      i = end + 1;
    } else if (c === '"') {
      cur ??= [];
      i++;
      for (;;) {
        if (i >= text.length) fail('unterminated double quote');
        const d = text[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\') {
          const [bytes, next] = decodeEscape(text, i, fail);
          cur.push(...bytes);
          i = next;
        } else {
          i = pushChar(cur, text, i);
        }
      }
    } else if (c === '\\') {
      cur ??= [];
      const [bytes, next] = decodeEscape(text, i, fail);
      cur.push(...bytes);
      i = next;
    } else {
      cur ??= [];
      i = pushChar(cur, text, i);
    }
  }
  finish();
  return { args, rest: -1 };
}

function checkEtcdctlArgs(args: readonly string[], fail: (msg: string) => never): void {
  if (args.length === 0) fail('no etcdctl arguments');
  if (args.length > MAX_ARGS_PER_CASE) fail(`more than ${MAX_ARGS_PER_CASE} arguments`);
  if (args[0] === 'etcdctl') fail('leave out the leading "etcdctl"');
  if (args.some((a) => a.startsWith('--endpoints'))) fail('--endpoints is added by the harness');
}

function parseCount(word: string | undefined, what: string, max: number, fail: (msg: string) => never): number {
  if (word === undefined || !/^\d+$/.test(word)) fail(`${what}: expected a number, got "${word ?? ''}"`);
  const n = Number(word);
  if (n > max) fail(`${what}: at most ${max}`);
  return n;
}

interface CaseBuilder {
  name: string;
  line: number;
  steps: Step[];
  coarseTtl: boolean;
  bgIds: Set<string>;
  sleepMs: number;
}

/** Parses one step (the args and stdin fields of a line). */
function parseStep(b: CaseBuilder, argText: string, lineNo: number, fail: (msg: string) => never): void {
  const { args, rest } = splitArgs(argText, fail);
  const stdinText = rest < 0 ? '' : argText.slice(rest).trim();
  const stdin = decodeEscapes(stdinText, fail);
  const first = args[0];
  const noStdin = (): void => {
    if (rest >= 0) fail(`${first} takes no stdin field`);
  };
  const knownBg = (id: string | undefined): string => {
    if (id === undefined || !b.bgIds.has(id)) fail(`${first}: "${id ?? ''}" is not a background step started earlier in this case`);
    return id!;
  };
  if (first !== undefined && first.startsWith('&')) {
    const id = first.slice(1);
    if (!BG_ID_RE.test(id)) fail(`bad background id "${id}" (allowed: letters, digits, _)`);
    if (b.bgIds.has(id)) fail(`background id "${id}" used twice in this case`);
    b.bgIds.add(id);
    const bgArgs = args.slice(1);
    checkEtcdctlArgs(bgArgs, fail);
    b.steps.push({ kind: 'bg', line: lineNo, id, args: bgArgs, stdin });
  } else if (first !== undefined && first.startsWith('@')) {
    noStdin();
    switch (first) {
      case '@wait':
        if (args.length !== 3) fail('usage: @wait ID LINES');
        b.steps.push({ kind: 'wait', line: lineNo, id: knownBg(args[1]), lines: parseCount(args[2], '@wait', MAX_WAIT_LINES, fail) });
        break;
      case '@kill':
        if (args.length !== 2) fail('usage: @kill ID');
        b.steps.push({ kind: 'kill', line: lineNo, id: knownBg(args[1]) });
        break;
      case '@sleep': {
        if (args.length !== 2) fail('usage: @sleep MILLISECONDS');
        const ms = parseCount(args[1], '@sleep', MAX_SLEEP_PER_CASE_MS, fail);
        b.sleepMs += ms;
        if (b.sleepMs > MAX_SLEEP_PER_CASE_MS) fail(`more than ${MAX_SLEEP_PER_CASE_MS} ms of @sleep in one case`);
        b.steps.push({ kind: 'sleep', line: lineNo, ms });
        break;
      }
      case '@until': {
        const lines = parseCount(args[1], '@until', MAX_WAIT_LINES, fail);
        const untilArgs = args.slice(2);
        checkEtcdctlArgs(untilArgs, fail);
        b.steps.push({ kind: 'until', line: lineNo, lines, args: untilArgs });
        break;
      }
      case '@coarse-ttl':
        if (args.length !== 1) fail('@coarse-ttl takes no arguments');
        b.coarseTtl = true;
        break;
      default:
        fail(`unknown directive ${first} (known: @wait @kill @sleep @until @coarse-ttl)`);
    }
  } else {
    checkEtcdctlArgs(args, fail);
    b.steps.push({ kind: 'run', line: lineNo, args, stdin });
  }
  if (b.steps.length > MAX_STEPS_PER_CASE) fail(`more than ${MAX_STEPS_PER_CASE} steps in one case`);
}

/** Parses the whole case file. Throws CaseParseError with file:line on any problem. */
export function parseCases(text: string, file = 'cases.txt'): CompatCase[] {
  const cases: CompatCase[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  let cur: CaseBuilder | undefined;
  const finish = (): void => {
    if (cur === undefined) return;
    const b = cur;
    cur = undefined;
    if (!b.steps.some((s) => s.kind === 'run' || s.kind === 'bg')) {
      throw new CaseParseError(file, b.line, `case "${b.name}" has no etcdctl step`);
    }
    cases.push({ file, name: b.name, line: b.line, steps: b.steps, coarseTtl: b.coarseTtl });
    if (cases.length > MAX_CASES) throw new CaseParseError(file, b.line, `more than ${MAX_CASES} cases`);
  };
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const fail = (msg: string): never => {
      throw new CaseParseError(file, lineNo, msg);
    };
    const raw = lines[n]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;

    const bar = raw.indexOf('|');
    if (bar < 0) fail('expected "name | args [| stdin]" (or " | args" to continue a case)');
    const name = raw.slice(0, bar).trim();
    if (name === '') {
      if (cur === undefined) fail('a step line (empty name) must follow a case line');
    } else {
      finish();
      if (!NAME_RE.test(name)) fail(`bad case name "${name}" (allowed: letters, digits, . _ -)`);
      const prev = seen.get(name);
      if (prev !== undefined) fail(`duplicate case name "${name}" (first on line ${prev})`);
      seen.set(name, lineNo);
      cur = { name, line: lineNo, steps: [], coarseTtl: false, bgIds: new Set(), sleepMs: 0 };
    }
    parseStep(cur!, raw.slice(bar + 1), lineNo, fail);
  }
  finish();
  return cases;
}

// ---------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------

/** True if etcdctl is asked for the protobuf printer (binary stdout). */
export function wantsProtobuf(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-w=protobuf' || a === '--write-out=protobuf') return true;
    if ((a === '-w' || a === '--write-out') && args[i + 1] === 'protobuf') return true;
  }
  return false;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Normalizes text output (handled as latin1 so arbitrary bytes survive):
 * - cluster_id / member_id / raft_term in `-w json` -> 0
 * - the first "ClusterID" / "MemberID" / "RaftTerm" line in `-w fields` -> 0
 * - the client's retry warnings on stderr: "ts" and the random client UUID
 * - the server's own endpoint (host:port differs per server) -> <endpoint>
 * Revisions are deliberately NOT normalized: both servers start empty.
 */
export function normalizeText(buf: Buffer, endpoint: string): Buffer {
  let s = buf.toString('latin1');
  s = s.replace(/"(cluster_id|member_id|raft_term)":\s*\d+/g, '"$1":0');
  // Only the first (top-level) header: nested txn responses print their own
  // header lines, which etcd leaves at 0 and which must then match as is.
  for (const f of ['ClusterID', 'MemberID', 'RaftTerm']) s = s.replace(new RegExp(`"${f}" : \\d+`), `"${f}" : 0`);
  s = s.replace(/"ts":"[^"]*"/g, '"ts":"<ts>"');
  s = s.replace(/endpoint:\/\/client-[0-9a-fA-F-]+\//g, 'endpoint://client-<uuid>/');
  s = s.replace(new RegExp(escapeRe(endpoint), 'g'), '<endpoint>');
  return Buffer.from(s, 'latin1');
}

// Minimal protobuf reader/writer: just enough to rewrite the ResponseHeader
// (field 1 of every KV response) with cluster_id (1), member_id (2) and
// raft_term (4) removed (proto3 encodes 0 as "absent").

interface PbField { num: number; wire: number; raw: Buffer } // raw = full encoded field (key + payload)

function readVarint(b: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++]!;
    v |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [v, pos];
    shift += 7n;
  }
  throw new Error('varint too long');
}

function writeVarint(v: bigint): Buffer {
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

function readFields(b: Buffer): PbField[] {
  const fields: PbField[] = [];
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    const [key, p1] = readVarint(b, pos);
    pos = p1;
    const num = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (num === 0) throw new Error('field number 0');
    switch (wire) {
      case 0: pos = readVarint(b, pos)[1]; break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        const [len, p2] = readVarint(b, pos);
        pos = p2 + Number(len);
        break;
      }
      default: throw new Error(`unsupported wire type ${wire}`);
    }
    if (pos > b.length) throw new Error('truncated field');
    fields.push({ num, wire, raw: b.subarray(start, pos) });
  }
  return fields;
}

function payloadOf(f: PbField): Buffer {
  const [, afterKey] = readVarint(f.raw, 0);
  const [len, afterLen] = readVarint(f.raw, afterKey);
  const payload = f.raw.subarray(afterLen);
  if (payload.length !== Number(len)) throw new Error('length mismatch');
  return payload;
}

/** Rewrites the top-level header of a protobuf KV response; returns the input unchanged if it does not parse. */
export function normalizeProtobuf(buf: Buffer): Buffer {
  try {
    const top = readFields(buf);
    const parts: Buffer[] = [];
    for (const f of top) {
      if (f.num === 1 && f.wire === 2) {
        const kept = readFields(payloadOf(f)).filter((h) => !(h.wire === 0 && (h.num === 1 || h.num === 2 || h.num === 4)));
        const header = Buffer.concat(kept.map((h) => h.raw));
        parts.push(Buffer.from([0x0a]), writeVarint(BigInt(header.length)), header);
      } else {
        parts.push(f.raw);
      }
    }
    return Buffer.concat(parts);
  } catch {
    return buf;
  }
}

export interface RunOutput {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
}

/** What one server printed for a case: one output per recorded step, plus harness notes (e.g. a @wait that timed out). */
export interface CaseResult {
  readonly outputs: readonly RunOutput[];
  readonly notes: readonly string[];
}

/** The first bytes of buf up to and including its n-th newline (all of buf if it has fewer). */
export function firstLines(buf: Buffer, n: number): Buffer {
  let seen = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0x0a && ++seen === n) return buf.subarray(0, i + 1);
  }
  return buf;
}

// Lease ids. etcd makes them from the member id and the clock, so they differ
// per server. They appear in hex (etcdctl prints "%016x" in lease output and
// "%x" inside lock/election keys) and in decimal (JSON "ID"/"id"/"lease",
// fields "ID"/"Lease"). Each distinct id gets a number in order of first
// appearance in the case's outputs and prints as <L1>, <L2>, ... Numbers below
// 2^48 are left alone: server-made ids have the low 16 bits of the member id in
// their top 16 bits (zero with odds 1 in 65536), while small ids are the case's
// own constants (e.g. `lease revoke 1234`, printed as 0000000000001234).
const LEASE_RE = /\b([0-9a-f]{13,16})\b|("(?:ID|id|lease)":|"(?:ID|Lease)" : )(\d{15,20})\b/g;
const MIN_LEASE_ID = 1n << 48n;
const MAX_LEASE_ID = (1n << 63n) - 1n;

/** Numbers the lease ids of one case on one server, in order of first appearance. */
export class LeaseIds {
  private readonly numbers = new Map<bigint, number>();
  private readonly ids: bigint[] = [];

  private static parse(hex: string | undefined, dec: string | undefined): bigint | undefined {
    const v = hex !== undefined ? BigInt('0x' + hex) : BigInt(dec!);
    return v >= MIN_LEASE_ID && v <= MAX_LEASE_ID ? v : undefined;
  }

  /** Registers every lease id in text that is not known yet, in order of appearance. */
  scan(text: string): void {
    for (const m of text.matchAll(LEASE_RE)) {
      const v = LeaseIds.parse(m[1], m[3]);
      if (v !== undefined && !this.numbers.has(v)) {
        this.ids.push(v);
        this.numbers.set(v, this.ids.length);
      }
    }
  }

  /** The hex id (as etcdctl takes it) of lease number n (1-based), if seen. */
  hex(n: number): string | undefined {
    return this.ids[n - 1]?.toString(16);
  }

  /** Replaces every known lease id by <Ln>. */
  normalize(text: string): string {
    return text.replace(LEASE_RE, (all, hex: string | undefined, prefix: string | undefined, dec: string | undefined) => {
      const v = LeaseIds.parse(hex, dec);
      const n = v === undefined ? undefined : this.numbers.get(v);
      if (n === undefined) return all;
      return hex !== undefined ? `<L${n}>` : `${prefix!}<L${n}>`;
    });
  }

  /** Replaces $L<n> in an argument; throws if lease n was not seen yet. */
  substitute(arg: string): string {
    return arg.replace(/\$L(\d+)/g, (_all, n: string) => {
      const hex = this.hex(Number(n));
      if (hex === undefined) throw new Error(`$L${n} is not defined: only ${this.ids.length} lease id(s) seen so far in this case`);
      return hex;
    });
  }
}

/**
 * Remaining TTLs (`lease timetolive`) are truncated to whole seconds from a
 * clock that runs while the command is on its way, so two servers may differ
 * by a second, or more when a lease lives across cases that ran at different
 * speeds on the two servers (a loaded machine). Only in cases marked
 * @coarse-ttl: a remaining TTL within max(2 s, 5% of the granted TTL) below
 * the granted TTL prints as "~granted". Anything else (expired = -1, 0,
 * or more than the granted TTL) is left exact.
 */
export function coarseTtl(text: string): string {
  const near = (rem: string, granted: string): boolean => {
    const r = Number(rem);
    const g = Number(granted);
    return g > 0 && r <= g && r >= g - Math.max(2, g / 20);
  };
  return text
    .replace(/TTL\((\d+)s\), remaining\((-?\d+)s\)/g, (all, g: string, r: string) =>
      near(r, g) ? `TTL(${g}s), remaining(~${g}s)` : all)
    .replace(/"ttl":(-?\d+),"granted-ttl":(\d+)/g, (all, r: string, g: string) =>
      near(r, g) ? `"ttl":~${g},"granted-ttl":${g}` : all)
    .replace(/"TTL" : (-?\d+)\n"GrantedTTL" : (\d+)/g, (all, r: string, g: string) =>
      near(r, g) ? `"TTL" : ~${g}\n"GrantedTTL" : ${g}` : all);
}

/**
 * `lease timetolive --keys` lists the attached keys in Go map order, which is
 * random in etcd itself: sort them (text: space-separated; JSON: the base64
 * strings). Always applied.
 */
export function sortLeaseKeys(text: string): string {
  return text
    .replace(/attached keys\(\[([^\]\n]*)\]\)/g, (_all, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`)
    .replace(/"keys":\[([^\]\n]*)\]/g, (_all, keys: string) => `"keys":[${keys.split(',').sort().join(',')}]`);
}

/**
 * A background etcdctl stopped by the harness (SIGTERM) sometimes logs a retry
 * warning for the RPC that the signal itself cancelled ("code = Canceled desc =
 * context canceled"), depending on how far the client got. That line is client
 * noise: it is removed from background steps' stderr (only there).
 */
export function dropCancelNoise(text: string): string {
  return text.replace(/^\{"level":"warn"[^\n]*"error":"rpc error: code = Canceled desc = context canceled"\}\n/gm, '');
}

/** Normalizes one step's raw output (ids, client noise); lease ids are handled by normalizeCase. */
export function normalizeOutput(args: readonly string[], out: RunOutput, endpoint: string): RunOutput {
  const stdout = wantsProtobuf(args) ? normalizeProtobuf(out.stdout) : normalizeText(out.stdout, endpoint);
  return { ...out, stdout, stderr: normalizeText(out.stderr, endpoint) };
}

/**
 * Normalizes a whole case result: per-step normalization, then lease ids
 * (numbered by `leases`, which already holds the ids registered while the case
 * ran, then by every output in step order), then @coarse-ttl.
 */
export function normalizeCase(c: CompatCase, r: CaseResult, endpoint: string, leases: LeaseIds): CaseResult {
  const steps = recordedSteps(c);
  const outs = r.outputs.map((o, i) => normalizeOutput(steps[i]!.args, o, endpoint));
  const text = (b: Buffer): string => b.toString('latin1');
  outs.forEach((o, i) => {
    if (!wantsProtobuf(steps[i]!.args)) leases.scan(text(o.stdout));
    leases.scan(text(o.stderr));
  });
  const fix = (b: Buffer): Buffer => {
    let t = sortLeaseKeys(leases.normalize(text(b)));
    if (c.coarseTtl) t = coarseTtl(t);
    return Buffer.from(t, 'latin1');
  };
  return {
    outputs: outs.map((o, i) => {
      const s = steps[i]!;
      const stderr = fix(o.stderr);
      return {
        ...o,
        stdout: wantsProtobuf(s.args) ? o.stdout : fix(o.stdout),
        stderr: s.kind === 'bg' ? Buffer.from(dropCancelNoise(stderr.toString('latin1')), 'latin1') : stderr,
      };
    }),
    notes: r.notes,
  };
}

// ---------------------------------------------------------------------------
// Mismatch report
// ---------------------------------------------------------------------------

/** Makes a line printable: bytes outside printable ASCII/UTF-8 become \xHH. */
function visible(line: Buffer): string {
  const s = line.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(line)) {
    return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
  }
  return [...line].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

function splitLines(b: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a) { lines.push(b.subarray(start, i)); start = i + 1; }
  }
  if (start < b.length) lines.push(b.subarray(start));
  return lines;
}

const COL = 70;

function sideBySide(title: string, a: Buffer, b: Buffer, la: string, lb: string, binary: boolean): string {
  const toLines = (x: Buffer): string[] =>
    binary ? (x.toString('hex').match(/.{1,48}/g) ?? []) : splitLines(x).map(visible);
  const left = toLines(a);
  const right = toLines(b);
  const same = a.equals(b);
  const out = [`--- ${title}: ${same ? 'identical' : 'DIFFERENT'}${binary ? ' (hex)' : ''} (${a.length} vs ${b.length} bytes)`];
  if (same && a.length === 0) return out[0]!;
  out.push(`  ${la.padEnd(COL)} | ${lb}`);
  const n = Math.max(left.length, right.length);
  for (let i = 0; i < n; i++) {
    const l = left[i] ?? '<none>';
    const r = right[i] ?? '<none>';
    const mark = l === r ? ' ' : '!';
    // Long lines are shown in full: the left column only pads, never truncates.
    out.push(`${mark} ${l.padEnd(COL)} | ${r}`);
  }
  return out.join('\n');
}

function status(o: RunOutput): string {
  if (o.timedOut) return 'timed out (killed)';
  if (o.signal !== null) return `killed by ${o.signal}`;
  return `exit ${o.code}`;
}

export function outputsEqual(a: RunOutput, b: RunOutput): boolean {
  return a.code === b.code && a.signal === b.signal && a.timedOut === b.timedOut && a.stdout.equals(b.stdout) && a.stderr.equals(b.stderr);
}

export function resultsEqual(a: CaseResult, b: CaseResult): boolean {
  return (
    a.outputs.length === b.outputs.length &&
    a.outputs.every((o, i) => outputsEqual(o, b.outputs[i]!)) &&
    a.notes.join('\n') === b.notes.join('\n')
  );
}

/** The failure message: both normalized outputs side by side, step by step. */
export function describeMismatch(c: CompatCase, a: CaseResult, b: CaseResult, la: string, lb: string): string {
  const steps = recordedSteps(c);
  const out = [`case "${c.name}" (${c.file}:${c.line})${c.coarseTtl ? ' [@coarse-ttl]' : ''}`];
  if (c.steps.length > 1) out.push(...c.steps.map((s, i) => `  step ${i + 1} (line ${s.line}): ${describeStep(s)}`));
  steps.forEach((s, i) => {
    const x = a.outputs[i];
    const y = b.outputs[i];
    const head = steps.length > 1 ? `=== step (line ${s.line}) ${describeStep(s)}` : `=== ${describeStep(s)}`;
    if (x === undefined || y === undefined) {
      out.push(head, `--- not run: ${la}: ${x === undefined ? 'no' : 'yes'}   ${lb}: ${y === undefined ? 'no' : 'yes'}`);
      return;
    }
    const same = outputsEqual(x, y);
    out.push(
      `${head}${steps.length > 1 ? (same ? '  [identical]' : '  [DIFFERENT]') : ''}`,
      `--- status: ${status(x) === status(y) ? 'identical' : 'DIFFERENT'}: ${la}: ${status(x)}   ${lb}: ${status(y)}`,
      sideBySide('stdout', x.stdout, y.stdout, la, lb, wantsProtobuf(s.args)),
      sideBySide('stderr', x.stderr, y.stderr, la, lb, false),
    );
  });
  if (a.notes.length > 0 || b.notes.length > 0) {
    out.push(`--- harness notes: ${a.notes.join('\n') === b.notes.join('\n') ? 'identical' : 'DIFFERENT'}`);
    for (const n of a.notes) out.push(`  ${la}: ${n}`);
    for (const n of b.notes) out.push(`  ${lb}: ${n}`);
  }
  return out.join('\n');
}
