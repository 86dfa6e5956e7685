// HPACK (RFC 7541) for the raw HTTP/2 client: a full decoder (static and
// dynamic table, Huffman) and constant request header blocks that use no
// dynamic table (literal without indexing), so they can be built once.

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
const firstCode = new Array<number>(MAX_LEN + 2).fill(0);
const countByLen = new Array<number>(MAX_LEN + 2).fill(0);
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
        if (sym === 256) throw new Error('hpack: EOS in string');
        out += String.fromCharCode(sym);
        code = 0; len = 0;
      } else if (len > MAX_LEN) {
        throw new Error('hpack: bad huffman code');
      }
    }
  }
  // Padding must be at most 7 one-bits (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new Error('hpack: bad huffman padding');
  return out;
}

const STATIC: [string, string][] = [
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

export type HeaderSink = (name: string, value: string) => void;

export class HpackDecoder {
  private dyn: [string, string][] = [];   // newest first
  private size = 0;
  private maxSize = 4096;
  private pos = 0;
  private buf: Buffer = Buffer.alloc(0);

  /** Decodes one complete header block, calling `sink` for each field. */
  decode(block: Buffer, sink: HeaderSink): void {
    this.buf = block;
    this.pos = 0;
    while (this.pos < block.length) {
      const b = block[this.pos]!;
      if (b & 0x80) {                                  // indexed field
        const [n, v] = this.entry(this.int(7));
        sink(n, v);
      } else if (b & 0x40) {                           // literal with incremental indexing
        const f = this.literal(6);
        this.add(f);
        sink(f[0], f[1]);
      } else if (b & 0x20) {                           // dynamic table size update
        this.maxSize = this.int(5);
        this.evict(0);
      } else {                                         // literal without / never indexed
        const f = this.literal(4);
        sink(f[0], f[1]);
      }
    }
  }

  private int(prefix: number): number {
    const mask = (1 << prefix) - 1;
    let v = this.buf[this.pos++]! & mask;
    if (v < mask) return v;
    let m = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('hpack: truncated integer');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * Math.pow(2, m);
      m += 7;
      if ((b & 0x80) === 0) return v;
      if (m > 28) throw new Error('hpack: integer too large');
    }
  }

  private str(): string {
    const huff = (this.buf[this.pos]! & 0x80) !== 0;
    const len = this.int(7);
    const start = this.pos;
    const end = start + len;
    if (end > this.buf.length) throw new Error('hpack: truncated string');
    this.pos = end;
    return huff ? huffmanDecode(this.buf, start, end) : this.buf.toString('latin1', start, end);
  }

  private literal(prefix: number): [string, string] {
    const idx = this.int(prefix);
    const name = idx === 0 ? this.str() : this.entry(idx)[0];
    return [name, this.str()];
  }

  private entry(i: number): [string, string] {
    if (i >= 1 && i <= STATIC.length) return STATIC[i - 1]!;
    const d = this.dyn[i - STATIC.length - 1];
    if (!d) throw new Error(`hpack: bad index ${i}`);
    return d;
  }

  private add(f: [string, string]): void {
    const sz = f[0].length + f[1].length + 32;
    this.evict(sz);
    if (sz <= this.maxSize) { this.dyn.unshift(f); this.size += sz; }
  }

  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.dyn.length > 0) {
      const f = this.dyn.pop()!;
      this.size -= f[0].length + f[1].length + 32;
    }
  }
}

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

/** The request header block for a gRPC call: no dynamic table, no Huffman. */
export function grpcRequestHeaders(path: string, authority: string): Buffer {
  const out: number[] = [0x83, 0x86];                   // :method POST, :scheme http
  encInt(out, 0x00, 4, 4); encStr(out, path);           // :path (name index 4)
  encInt(out, 0x00, 4, 1); encStr(out, authority);      // :authority (name index 1)
  encInt(out, 0x00, 4, 31); encStr(out, 'application/grpc'); // content-type (name index 31)
  out.push(0x00); encStr(out, 'te'); encStr(out, 'trailers');
  return Buffer.from(out);
}
