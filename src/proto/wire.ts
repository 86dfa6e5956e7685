// Protobuf wire primitives: a growable writer and a bounds-checked reader.
// Pure (no I/O). Hand-written codecs build on these; anything malformed on
// the read side throws ProtoDecodeError, never a RangeError or a wrong value.

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LDELIM = 2;
export const WIRE_FIXED32 = 5;

const TWO_32 = 4294967296;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const BIG_MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const BIG_MASK_32 = 0xffffffffn;

/** Shared zero-length Buffer for absent bytes fields (a 0-byte view cannot be mutated). */
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

export class ProtoDecodeError extends Error {
  readonly code = 'ETSD_PROTO_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'ProtoDecodeError';
  }
}

// ---------------------------------------------------------------- sizes

/** Encoded size of a varint holding a safe integer; negatives take 10 bytes (int64). */
export function varintSize(n: number): number {
  if (n < 0) return 10;
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 34359738368) return 5; // 2^35
  if (n < 4398046511104) return 6; // 2^42
  if (n < 562949953421312) return 7; // 2^49
  return 8; // up to 2^56, which covers every safe integer
}

/** Encoded size of a 64-bit varint given as bigint (two's complement for negatives). */
export function varintSizeBig(v: bigint): number {
  if (v >= 0n && v <= BIG_MAX_SAFE) return varintSize(Number(v));
  if (v < 0n) return 10;
  const hi = Number(BigInt.asUintN(64, v) >> 32n);
  // v > 2^53 here, so hi >= 2^21: at least 8 bytes.
  return hi < 0x1000000 ? 8 : hi < 0x80000000 ? 9 : 10;
}

/** Size of a length-delimited field body: its length prefix plus its bytes. */
export function ldelimSize(len: number): number {
  return varintSize(len) + len;
}

// ---------------------------------------------------------------- put* (pre-sized)

// Writers over a Buffer the caller has already sized exactly: each writes at
// `pos` and returns the position after. No bounds checks here (a typed array
// drops out-of-range stores silently), so callers must assert the final
// position equals the size they computed. These are the hot-path encoders;
// ProtoWriter wraps them with growth for code that cannot size up front.

export function putVarint32(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Varint from two unsigned 32-bit halves. */
export function putVarint64(buf: Buffer, pos: number, lo: number, hi: number): number {
  while (hi !== 0) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

/** Safe integer as a varint; negatives as 64-bit two's complement (int64). */
export function putVarint(buf: Buffer, pos: number, n: number): number {
  if (n < 0x80 && n >= 0) {
    buf[pos] = n;
    return pos + 1;
  }
  if (n < 0) {
    const hi = Math.floor(n / TWO_32);
    return putVarint64(buf, pos, n - hi * TWO_32, hi >>> 0);
  }
  if (n > MAX_SAFE) throw new RangeError(`varint ${n} is not a safe integer`);
  while (n > 0x7fffffff) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** int32/enum: negatives sign-extend to 10 bytes. */
export function putInt32(buf: Buffer, pos: number, n: number): number {
  return n < 0 ? putVarint64(buf, pos, n >>> 0, 0xffffffff) : putVarint32(buf, pos, n);
}

/** 64-bit varint from a bigint; negatives as two's complement. */
export function putVarintBig(buf: Buffer, pos: number, v: bigint): number {
  if (v >= 0n && v <= BIG_MAX_SAFE) return putVarint(buf, pos, Number(v));
  const u = BigInt.asUintN(64, v);
  return putVarint64(buf, pos, Number(u & BIG_MASK_32), Number(u >> 32n));
}

/** Raw bytes, no length prefix. */
export function putRaw(buf: Buffer, pos: number, b: Uint8Array): number {
  const len = b.length;
  if (len > 40) {
    buf.set(b, pos);
    return pos + len;
  }
  for (let i = 0; i < len; i++) buf[pos++] = b[i]!;
  return pos;
}

/** Length-prefixed bytes. */
export function putBytes(buf: Buffer, pos: number, b: Uint8Array): number {
  const len = b.length;
  if (len < 0x80) buf[pos++] = len;
  else pos = putVarint32(buf, pos, len);
  if (len > 40) {
    buf.set(b, pos);
    return pos + len;
  }
  for (let i = 0; i < len; i++) buf[pos++] = b[i]!;
  return pos;
}

// ---------------------------------------------------------------- writer

/**
 * Growable writer. Construct it with the exact size when it is known (the
 * hand-written codecs size messages first) so it never reallocates.
 */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size > 0 ? size : 16);
  }

  private grow(need: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.pos + need) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  writeTag(field: number, wireType: number): void {
    this.writeVarint32(((field << 3) | wireType) >>> 0);
  }

  /** Unsigned 32-bit varint (tags, lengths). */
  writeVarint32(n: number): void {
    this.ensure(5);
    this.pos = putVarint32(this.buf, this.pos, n);
  }

  /**
   * Varint of a safe integer. Negative values are written as 64-bit two's
   * complement (10 bytes), which is the int64 encoding.
   */
  writeVarint(n: number): void {
    this.ensure(10);
    this.pos = putVarint(this.buf, this.pos, n);
  }

  /** int32/enum: negatives sign-extend to 10 bytes as protobuf requires. */
  writeInt32(n: number): void {
    this.ensure(10);
    this.pos = putInt32(this.buf, this.pos, n);
  }

  /** 64-bit varint from a bigint; negatives as two's complement. */
  writeVarintBig(v: bigint): void {
    this.ensure(10);
    this.pos = putVarintBig(this.buf, this.pos, v);
  }

  /** Varint from two unsigned 32-bit halves. */
  writeVarint64(lo: number, hi: number): void {
    this.ensure(10);
    this.pos = putVarint64(this.buf, this.pos, lo, hi);
  }

  writeBool(b: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = b ? 1 : 0;
  }

  writeFixed32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }

  writeFixed64Big(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  /** Raw bytes, no length prefix. */
  writeRaw(b: Uint8Array): void {
    this.ensure(b.length);
    this.pos = putRaw(this.buf, this.pos, b);
  }

  /** Length-prefixed bytes (the body of a bytes field). */
  writeBytes(b: Uint8Array): void {
    this.ensure(5 + b.length);
    this.pos = putBytes(this.buf, this.pos, b);
  }

  /** Length-prefixed UTF-8 string. */
  writeString(s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.writeVarint32(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  /**
   * Starts a length-delimited sub-message of unknown size: reserves 5 bytes
   * for the length and returns a mark for ldelim(). Prefer writing the exact
   * length when it can be computed up front (no memmove).
   */
  fork(): number {
    this.ensure(5);
    const mark = this.pos;
    this.pos += 5;
    return mark;
  }

  /** Ends a sub-message started by fork(): writes its length, closes the gap. */
  ldelim(mark: number): void {
    const start = mark + 5;
    const len = this.pos - start;
    const lsize = varintSize(len);
    let p = mark;
    let n = len;
    while (n > 0x7f) {
      this.buf[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[p++] = n;
    if (lsize < 5) this.buf.copyWithin(p, start, this.pos);
    this.pos = p + len;
  }

  /** The written bytes (a view over the internal buffer when it is larger). */
  finish(): Buffer {
    return this.pos === this.buf.length ? this.buf : this.buf.subarray(0, this.pos);
  }
}

// ---------------------------------------------------------------- reader

function truncated(): never {
  throw new ProtoDecodeError('truncated message');
}

/**
 * Bounds-checked reader over a Buffer. `end` is the end of the outermost
 * message; nested messages are read in place (no sub-reader), the caller
 * tracks each message's own end and checks pos lands on it exactly.
 */
export class ProtoReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
  // Halves of the last readVarint64() call (avoids allocating a pair).
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (start < 0 || end > this.buf.length || start > end) throw new ProtoDecodeError('reader bounds out of range');
    this.pos = start;
    this.end = end;
  }

  /** Reads a field tag; returns (field << 3 | wireType) as an unsigned number. */
  readTag(): number {
    const buf = this.buf;
    const pos = this.pos;
    if (pos < this.end) {
      const b = buf[pos]!;
      if (b < 0x80) {
        if (b < 8) throw new ProtoDecodeError('invalid field number 0');
        this.pos = pos + 1;
        return b;
      }
    }
    const t = this.readVarint();
    if (t > 0xffffffff) throw new ProtoDecodeError('tag out of range');
    if (t < 8) throw new ProtoDecodeError('invalid field number 0');
    return t;
  }

  /** Unsigned varint as a number; throws if it exceeds 2^53 - 1. */
  readVarint(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos >= end) truncated();
    let b = buf[pos++]!;
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let result = b & 0x7f;
    let mul = 128;
    for (let i = 1; i < 10; i++) {
      if (pos >= end) truncated();
      b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > MAX_SAFE) throw new ProtoDecodeError('varint exceeds 2^53; read it as bigint');
        this.pos = pos;
        return result;
      }
      mul *= 128;
    }
    throw new ProtoDecodeError('varint longer than 10 bytes');
  }

  /** Reads a varint into this.lo / this.hi (unsigned 32-bit halves). */
  readVarint64(): void {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let i = 0; i < 4; i++) {
      if (pos >= end) truncated();
      b = buf[pos++]!;
      lo = (lo | ((b & 0x7f) << (i * 7))) >>> 0;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo;
        this.hi = 0;
        return;
      }
    }
    if (pos >= end) truncated();
    b = buf[pos++]!;
    lo = (lo | ((b & 0x7f) << 28)) >>> 0;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let i = 0; ; i++) {
        if (i === 5) throw new ProtoDecodeError('varint longer than 10 bytes');
        if (pos >= end) truncated();
        b = buf[pos++]!;
        hi = (hi | ((b & 0x7f) << (i * 7 + 3))) >>> 0;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo;
    this.hi = hi;
  }

  /** Unsigned 64-bit varint as bigint (uint64 fields). */
  readVarintBig(): bigint {
    const pos = this.pos;
    if (pos < this.end && this.buf[pos]! < 0x80) {
      this.pos = pos + 1;
      return BigInt(this.buf[pos]!);
    }
    this.readVarint64();
    if (this.hi < 0x200000) return BigInt(this.hi * TWO_32 + this.lo);
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** Signed 64-bit varint as bigint (int64 fields such as lease IDs). */
  readInt64Big(): bigint {
    const pos = this.pos;
    if (pos < this.end && this.buf[pos]! < 0x80) {
      this.pos = pos + 1;
      return BigInt(this.buf[pos]!);
    }
    this.readVarint64();
    const hi = this.hi;
    if (hi < 0x200000) return BigInt(hi * TWO_32 + this.lo);
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(this.lo));
  }

  /**
   * Signed 64-bit varint as a number (int64 revisions, limits, counts). Values
   * outside the safe range saturate to +/-2^53-1: no real revision or count
   * gets there, and every comparison etcd makes with such a value (a limit of
   * MaxInt64, a future revision) comes out the same as with the exact value.
   */
  readInt64(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.readVarint64();
    const lo = this.lo;
    const hi = this.hi;
    if (hi < 0x200000) return hi * TWO_32 + lo;
    if (hi >= 0xffe00000) {
      // Negative: -(~value + 1) where the magnitude fits in 53 bits.
      const mag = (~hi >>> 0) * TWO_32 + (~lo >>> 0) + 1;
      return mag <= MAX_SAFE ? -mag : -MAX_SAFE;
    }
    return hi >= 0x80000000 ? -MAX_SAFE : MAX_SAFE;
  }

  /** int32 / enum: low 32 bits, sign-extended. */
  readInt32(): number {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.readVarint64();
    return this.lo | 0;
  }

  /** uint32: low 32 bits. */
  readUint32(): number {
    this.readVarint64();
    return this.lo;
  }

  readBool(): boolean {
    const pos = this.pos;
    if (pos < this.end) {
      const b = this.buf[pos]!;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b !== 0;
      }
    }
    this.readVarint64();
    return (this.lo | this.hi) !== 0;
  }

  /** Length prefix of a length-delimited field, checked against the end. */
  readLength(): number {
    const len = this.readVarint();
    if (len > this.end - this.pos) throw new ProtoDecodeError('length past end of message');
    return len;
  }

  /** Bytes field body as a view into the input (no copy). */
  readBytes(): Buffer {
    const len = this.readLength();
    if (len === 0) return EMPTY_BUFFER;
    const start = this.pos;
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  readString(): string {
    const len = this.readLength();
    const start = this.pos;
    this.pos = start + len;
    return this.buf.toString('utf8', start, start + len);
  }

  readFixed32(): number {
    if (this.end - this.pos < 4) truncated();
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  readFixed64Big(): bigint {
    if (this.end - this.pos < 8) truncated();
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Skips one field body of the given wire type; groups (3, 4) are rejected. */
  skipField(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT: {
        const buf = this.buf;
        const end = this.end;
        let pos = this.pos;
        for (let i = 0; ; i++) {
          if (i === 10) throw new ProtoDecodeError('varint longer than 10 bytes');
          if (pos >= end) truncated();
          if (buf[pos++]! < 0x80) break;
        }
        this.pos = pos;
        return;
      }
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) truncated();
        this.pos += 8;
        return;
      case WIRE_LDELIM: {
        const len = this.readLength();
        this.pos += len;
        return;
      }
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) truncated();
        this.pos += 4;
        return;
      case 3:
      case 4:
        throw new ProtoDecodeError('group wire types are not supported');
      default:
        throw new ProtoDecodeError(`invalid wire type ${wireType}`);
    }
  }
}

/**
 * The value of varint field `field` in a message (the last one, as protobuf
 * merges), 0n when absent; other fields are skipped. For requests with a single
 * scalar that matters (an ID, a revision, an action).
 */
export function readVarintField(msg: Uint8Array, field: number): bigint {
  const r = new ProtoReader(msg);
  let v = 0n;
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t >>> 3 === field && (t & 7) === WIRE_VARINT) v = r.readVarintBig();
    else r.skipField(t & 7);
  }
  return v;
}
