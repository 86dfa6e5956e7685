// HPACK (RFC 7541) for the raw HTTP/2 server (and the load generator's
// client). The decoder fills a reusable HeaderList and handles the static and dynamic tables,
// Huffman strings and table size updates, with bounds on everything. The
// encoder is what a gRPC server needs: static-table indexed fields and
// literals without indexing, so we never keep a dynamic table of our own and
// the common blocks are built once.

// Code lengths of the canonical Huffman code of RFC 7541 Appendix B, symbols 0..255
// (EOS, symbol 256, is 30 bits). The codes themselves follow from the lengths.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

// Canonical decoding tables: for each length, the first code and the symbols in order.
const MAX_LEN = 30;
const firstCode = new Int32Array(MAX_LEN + 2);
const countByLen = new Int32Array(MAX_LEN + 2);
const symbolsByLen: number[][] = Array.from({ length: MAX_LEN + 2 }, () => []);
(() => {
  HUFFMAN_LENGTHS.forEach((len, sym) => { countByLen[len]!++; symbolsByLen[len]!.push(sym); });
  let code = 0;
  for (let len = 1; len <= MAX_LEN; len++) {
    code = (code + countByLen[len - 1]!) * 2;
    firstCode[len] = code;
  }
})();

/** Exposed for tests: the canonical code of a symbol. */
export function huffmanCode(sym: number): { code: number; len: number } {
  const len = HUFFMAN_LENGTHS[sym]!;
  return { code: firstCode[len]! + symbolsByLen[len]!.indexOf(sym), len };
}

/** Huffman-encodes latin1 text (tests use it to build requests as grpc-go does). */
export function huffmanEncode(s: string): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const { code, len } = huffmanCode(s.charCodeAt(i) & 0xff);
    for (let b = len - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code >>> b) & 1);
      if (++bits === 8) { out.push(acc); acc = 0; bits = 0; }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(out);
}

export class HpackError extends Error {}

export function huffmanDecode(b: Buffer, start: number, end: number): string {
  let out = '';
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const byte = b[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const idx = code - firstCode[len]!;
      if (idx >= 0 && idx < countByLen[len]!) {
        const sym = symbolsByLen[len]![idx]!;
        if (sym === 256) throw new HpackError('hpack: EOS in string');
        out += String.fromCharCode(sym);
        code = 0; len = 0;
      } else if (len >= MAX_LEN) {
        throw new HpackError('hpack: bad huffman code');
      }
    }
  }
  // Padding must be at most 7 one-bits (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError('hpack: bad huffman padding');
  return out;
}

type Field = readonly [string, string];

const STATIC: Field[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Most fields one header block may carry; more is a connection error (COMPRESSION_ERROR). */
export const MAX_FIELDS = 1024;

/** The decoded fields of one header block, in order; reused block after block. */
export class HeaderList {
  readonly names: string[] = [];
  readonly values: string[] = [];
  count = 0;
  /** RFC 7540 6.5.2 size: name + value + 32 per field. */
  size = 0;

  reset(): void {
    this.count = 0;
    this.size = 0;
  }

  add(name: string, value: string): void {
    if (this.count >= MAX_FIELDS) throw new HpackError(`hpack: more than ${MAX_FIELDS} fields in a header block`);
    this.names[this.count] = name;
    this.values[this.count] = value;
    this.count++;
    this.size += name.length + value.length + 32;
  }

  /** The last value of a field, or undefined. */
  get(name: string): string | undefined {
    for (let i = this.count - 1; i >= 0; i--) if (this.names[i] === name) return this.values[i];
    return undefined;
  }

  /** As node:http2 shows headers: one property per name, repeated fields joined with ', '. */
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (let i = 0; i < this.count; i++) {
      const n = this.names[i]!;
      const prev = o[n];
      o[n] = prev === undefined ? this.values[i]! : `${prev}, ${this.values[i]!}`;
    }
    return o;
  }
}

export class HpackDecoder {
  /** Dynamic table, oldest first (index 62 is the last element). */
  private readonly dyn: Field[] = [];
  private size = 0;
  private maxSize: number;
  private pos = 0;
  private buf: Buffer = Buffer.alloc(0);
  private end = 0;

  /** settingsMax: our SETTINGS_HEADER_TABLE_SIZE, the most a size update may ask for. */
  constructor(private readonly settingsMax = 4096) {
    this.maxSize = settingsMax;
  }

  /** Decodes one complete header block (block[start, end)) into `out`. Throws HpackError. */
  decode(block: Buffer, start: number, end: number, out: HeaderList): void {
    this.buf = block;
    this.pos = start;
    this.end = end;
    let first = true;
    while (this.pos < end) {
      const b = block[this.pos]!;
      if (b & 0x80) {                                  // indexed field
        const f = this.entry(this.int(7));
        out.add(f[0], f[1]);
      } else if (b & 0x40) {                           // literal with incremental indexing
        const idx = this.int(6);
        const name = idx === 0 ? this.str() : this.entry(idx)[0];
        const value = this.str();
        this.add(name, value);
        out.add(name, value);
      } else if (b & 0x20) {                           // dynamic table size update
        if (!first) throw new HpackError('hpack: table size update after a field');
        const sz = this.int(5);
        if (sz > this.settingsMax) throw new HpackError(`hpack: table size update ${sz} over ${this.settingsMax}`);
        this.maxSize = sz;
        this.evict(0);
        continue;                                      // several updates may open a block
      } else {                                         // literal without / never indexed
        const idx = this.int(4);
        const name = idx === 0 ? this.str() : this.entry(idx)[0];
        out.add(name, this.str());
      }
      first = false;
    }
  }

  private int(prefix: number): number {
    const mask = (1 << prefix) - 1;
    let v = this.buf[this.pos++]! & mask;
    if (v < mask) return v;
    let m = 0;
    for (;;) {
      if (this.pos >= this.end) throw new HpackError('hpack: truncated integer');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** m;
      m += 7;
      if ((b & 0x80) === 0) return v;
      if (m > 28) throw new HpackError('hpack: integer too large');
    }
  }

  private str(): string {
    if (this.pos >= this.end) throw new HpackError('hpack: truncated string');
    const huff = (this.buf[this.pos]! & 0x80) !== 0;
    const len = this.int(7);
    const start = this.pos;
    const end = start + len;
    if (end > this.end) throw new HpackError('hpack: truncated string');
    this.pos = end;
    return huff ? huffmanDecode(this.buf, start, end) : this.buf.toString('latin1', start, end);
  }

  private entry(i: number): Field {
    if (i >= 1 && i <= STATIC.length) return STATIC[i - 1]!;
    const d = this.dyn[this.dyn.length - (i - STATIC.length)];
    if (i === 0 || d === undefined) throw new HpackError(`hpack: bad index ${i}`);
    return d;
  }

  private add(name: string, value: string): void {
    const sz = name.length + value.length + 32;
    this.evict(sz);
    if (sz <= this.maxSize) { this.dyn.push([name, value]); this.size += sz; }
    else { this.dyn.length = 0; this.size = 0; }
  }

  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.dyn.length) {
      const f = this.dyn[drop++]!;
      this.size -= f[0].length + f[1].length + 32;
    }
    if (drop > 0) this.dyn.splice(0, drop);
  }
}

// ---------------------------------------------------------------- encoder

function encInt(out: number[], first: number, prefix: number, v: number): void {
  const mask = (1 << prefix) - 1;
  if (v < mask) { out.push(first | v); return; }
  out.push(first | mask);
  v -= mask;
  while (v >= 128) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
}

function encStr(out: number[], s: string): void {
  encInt(out, 0, 7, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

/** Literal without indexing, name from the static table (index) or spelled out (string). No Huffman. */
function literal(out: number[], name: number | string, value: string): void {
  if (typeof name === 'number') encInt(out, 0x00, 4, name);
  else { out.push(0x00); encStr(out, name); }
  encStr(out, value);
}

const STATIC_STATUS: Record<number, number> = { 200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14 };
const NAME_STATUS = 8;
const NAME_CONTENT_TYPE = 31;

function status(out: number[], code: number): void {
  const idx = STATIC_STATUS[code];
  if (idx !== undefined) out.push(0x80 | idx);
  else literal(out, NAME_STATUS, String(code));
}

/**
 * Encodes a header list: `:status` first when given, the rest as literals
 * without indexing (values must already be header-safe ASCII, e.g. a
 * percent-encoded grpc-message).
 */
export function encodeHeaders(fields: readonly (readonly [string, string | number])[]): Buffer {
  const out: number[] = [];
  for (const [n, v] of fields) {
    if (n === ':status') status(out, Number(v));
    else if (n === 'content-type') literal(out, NAME_CONTENT_TYPE, String(v));
    else literal(out, n, String(v));
  }
  return Buffer.from(out);
}

/** `:status 200`, `content-type: application/grpc`. */
export const GRPC_RESPONSE_HEADERS = encodeHeaders([[':status', 200], ['content-type', 'application/grpc']]);
/** `grpc-status: 0`. */
export const GRPC_OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);

/** Trailers with a status and an (already percent-encoded) message. */
export function grpcTrailers(code: number, encodedMessage: string): Buffer {
  return encodeHeaders([['grpc-status', String(code)], ['grpc-message', encodedMessage]]);
}

/** A trailers-only response: HTTP status, content-type and the gRPC status in one block. */
export function grpcTrailersOnly(httpStatus: number, code: number, encodedMessage: string): Buffer {
  return encodeHeaders([[':status', httpStatus], ['content-type', 'application/grpc'],
    ['grpc-status', String(code)], ['grpc-message', encodedMessage]]);
}
