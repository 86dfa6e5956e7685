// Parser for cases.txt and the output normalizer of the differential
// compatibility suite. Pure: no processes, no sockets (file reading is left
// to the caller), so both halves can be unit-tested on their own.
//
// Case file format (see README.md):
//
//   # comment
//   name | etcdctl args | optional stdin
//
// - name: [A-Za-z0-9._-]+, unique in the file.
// - args: split like a shell: whitespace separates words; '...' is literal;
//   "..." and bare words understand the escapes below; an unquoted `|` ends
//   the args field.
// - stdin: the rest of the line, trimmed, with the escapes below decoded
//   (write a leading or trailing space as \x20). Absent = empty stdin.
//
// Escapes: \n \t \r \0 \\ \" \' \| \s (space) \xHH (one byte, any value).
// An argument must decode to valid UTF-8 without NUL bytes (argv cannot carry
// anything else); use stdin (e.g. `put key` reads the value from stdin) to
// send arbitrary bytes.

export interface CompatCase {
  /** The case file (as given to parseCases), for error messages. */
  readonly file: string;
  /** Unique name; becomes the test name. */
  readonly name: string;
  /** 1-based line number in the case file, for error messages. */
  readonly line: number;
  /** etcdctl arguments, without the binary and without --endpoints. */
  readonly args: readonly string[];
  /** Bytes written to etcdctl's stdin (then stdin is closed). */
  readonly stdin: Buffer;
}

/** Limits: a case file is small and hand-written. */
const MAX_CASES = 10_000;
const MAX_ARGS_PER_CASE = 64;
const NAME_RE = /^[A-Za-z0-9._-]+$/;

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

/** Parses the whole case file. Throws CaseParseError with file:line on any problem. */
export function parseCases(text: string, file = 'cases.txt'): CompatCase[] {
  const cases: CompatCase[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const fail = (msg: string): never => {
      throw new CaseParseError(file, lineNo, msg);
    };
    const raw = lines[n]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;

    const bar = raw.indexOf('|');
    if (bar < 0) fail('expected "name | args [| stdin]"');
    const name = raw.slice(0, bar).trim();
    if (!NAME_RE.test(name)) fail(`bad case name "${name}" (allowed: letters, digits, . _ -)`);
    const prev = seen.get(name);
    if (prev !== undefined) fail(`duplicate case name "${name}" (first on line ${prev})`);
    seen.set(name, lineNo);

    const argText = raw.slice(bar + 1);
    const { args, rest } = splitArgs(argText, fail);
    if (args.length === 0) fail('no etcdctl arguments');
    if (args.length > MAX_ARGS_PER_CASE) fail(`more than ${MAX_ARGS_PER_CASE} arguments`);
    if (args[0] === 'etcdctl') fail('leave out the leading "etcdctl"');
    if (args.some((a) => a.startsWith('--endpoints'))) fail('--endpoints is added by the harness');
    const stdin = rest < 0 ? Buffer.alloc(0) : decodeEscapes(argText.slice(rest).trim(), fail);

    cases.push({ file, name, line: lineNo, args, stdin });
    if (cases.length > MAX_CASES) fail(`more than ${MAX_CASES} cases`);
  }
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

export function normalizeOutput(c: CompatCase, out: RunOutput, endpoint: string): RunOutput {
  const stdout = wantsProtobuf(c.args) ? normalizeProtobuf(out.stdout) : normalizeText(out.stdout, endpoint);
  return { ...out, stdout, stderr: normalizeText(out.stderr, endpoint) };
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

/** The failure message: both normalized outputs side by side. */
export function describeMismatch(c: CompatCase, a: RunOutput, b: RunOutput, la: string, lb: string): string {
  const binary = wantsProtobuf(c.args);
  return [
    `case "${c.name}" (${c.file}:${c.line}): etcdctl ${c.args.map((x) => JSON.stringify(x)).join(' ')}` +
      (c.stdin.length > 0 ? ` with stdin ${JSON.stringify(c.stdin.toString('latin1'))}` : ''),
    `--- status: ${status(a) === status(b) ? 'identical' : 'DIFFERENT'}: ${la}: ${status(a)}   ${lb}: ${status(b)}`,
    sideBySide('stdout', a.stdout, b.stdout, la, lb, binary),
    sideBySide('stderr', a.stderr, b.stderr, la, lb, false),
  ].join('\n');
}
