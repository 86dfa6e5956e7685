// gRPC message framing over HTTP/2, without any I/O: the 5-byte length
// prefix (1 byte compressed flag + 4 bytes big-endian length), the
// grpc-message percent-encoding and the grpc-timeout header. Pure functions
// and one small incremental reader, so they can be tested on their own.

import { Errors, type EtcdError } from '../common/errors.js';

export const PREFIX_BYTES = 5;

/** Receives each complete message a MessageReader finds. */
export interface MessageSink {
  onGrpcMessage(msg: Buffer): void;
}

/**
 * Splits a DATA byte stream into gRPC messages: handles a message split across
 * chunks and several messages in one chunk. A message that lies wholly inside
 * one chunk is passed on as a view of it (no copy); a split one is copied once
 * into a buffer of its exact size (bounded by maxRecvBytes).
 */
export class MessageReader {
  private readonly header = Buffer.alloc(PREFIX_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  /** grpc-encoding of the request, only read to word the error for a compressed message. */
  encoding: string | undefined = undefined;

  constructor(private readonly maxRecvBytes: number) {}

  /** Feeds one chunk. Returns the error that ends the call, or null. */
  push(chunk: Buffer, sink: MessageSink): EtcdError | null {
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.body !== null) {
        const take = Math.min(this.body.length - this.bodyFill, n - off);
        chunk.copy(this.body, this.bodyFill, off, off + take);
        this.bodyFill += take;
        off += take;
        if (this.bodyFill === this.body.length) {
          const msg = this.body;
          this.body = null;
          this.bodyFill = 0;
          sink.onGrpcMessage(msg);
        }
        continue;
      }
      let flag: number;
      let len: number;
      if (this.headerFill === 0 && n - off >= PREFIX_BYTES) {
        flag = chunk[off]!;
        len = chunk.readUInt32BE(off + 1);
        off += PREFIX_BYTES;
      } else {
        const take = Math.min(PREFIX_BYTES - this.headerFill, n - off);
        chunk.copy(this.header, this.headerFill, off, off + take);
        this.headerFill += take;
        off += take;
        if (this.headerFill < PREFIX_BYTES) break;
        this.headerFill = 0;
        flag = this.header[0]!;
        len = this.header.readUInt32BE(1);
      }
      if (flag !== 0) return this.flagError(flag);
      if (len > this.maxRecvBytes) return Errors.messageTooLarge(len, this.maxRecvBytes);
      if (n - off >= len) {
        const msg = chunk.subarray(off, off + len);
        off += len;
        sink.onGrpcMessage(msg);
      } else {
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
    }
    return null;
  }

  /** True when the bytes so far end in the middle of a message. */
  get partial(): boolean {
    return this.headerFill !== 0 || this.body !== null;
  }

  private flagError(flag: number): EtcdError {
    if (flag === 1) {
      const enc = this.encoding;
      if (enc !== undefined && enc !== '' && enc !== 'identity') {
        return Errors.decompressorMissing(enc);
      }
      return Errors.compressedWithoutEncoding();
    }
    return Errors.unexpectedPayloadFormat(flag);
  }
}


/** Length prefix + body in one buffer (one DATA write). */
export function frameMessage(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  out.set(body, PREFIX_BYTES);
  return out;
}

/** Just the 5-byte prefix, for bodies too big to copy cheaply. */
export function messagePrefix(length: number): Buffer {
  const out = Buffer.allocUnsafe(PREFIX_BYTES);
  out[0] = 0;
  out.writeUInt32BE(length, 1);
  return out;
}

const HEX = '0123456789ABCDEF';

/**
 * grpc-message value per the gRPC HTTP/2 spec: bytes outside 0x20-0x7E, and
 * '%' itself, are percent-encoded from the UTF-8 form. Fast path: most
 * messages are plain ASCII and come back unchanged.
 */
export function encodeGrpcMessage(msg: string): string {
  let clean = true;
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) { clean = false; break; }
  }
  if (clean) return msg;
  const bytes = Buffer.from(msg, 'utf8');
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b > 0x7e || b === 0x25) out += '%' + HEX[b >> 4]! + HEX[b & 15]!;
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Inverse of encodeGrpcMessage (lenient: a bad escape is kept as is). */
export function decodeGrpcMessage(value: string): string {
  if (value.indexOf('%') < 0) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && i + 2 < value.length && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c & 0xff);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * grpc-timeout (1-8 ASCII digits + unit H M S m u n) in milliseconds: -1 when
 * absent, NaN when malformed (grpc-go answers INTERNAL for that).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number {
  if (typeof value !== 'string') return -1;
  const n = value.length;
  if (n < 2 || n > 9) return NaN;
  const unit = TIMEOUT_UNIT_MS[value[n - 1]!];
  if (unit === undefined) return NaN;
  let v = 0;
  for (let i = 0; i < n - 1; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v * unit;
}
