// Stream framing for the peer transport: every frame is
//
//   u32 length (LE) | u32 crc32c(payload) (LE) | payload (length bytes)
//
// with a maximum payload size. A frame over the limit or with a bad checksum is a
// TransportFrameError, and the connection that carried it is closed (the stream
// cannot be resynchronised). Frames are built in place: reserve FRAME_HEADER_BYTES,
// write the payload after them, then sealFrame() writes length and checksum.

import { crc32c } from '../native/index.js';

export const FRAME_HEADER_BYTES = 8;
/** Default limit on one frame's payload (a raft message with its entries). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

export type FrameErrorReason = 'too-large' | 'checksum';

/** A frame that cannot be accepted: the peer sent garbage, or a frame over the limit. */
export class TransportFrameError extends Error {
  override name = 'TransportFrameError';
  readonly code = 'ETSD_TRANSPORT_FRAME';
  constructor(readonly reason: FrameErrorReason, message: string) {
    super(message);
  }
}

/**
 * Writes the header of the frame whose payload is buf[off+8 .. off+8+payloadBytes]
 * (already written there) and returns the offset after the frame.
 */
export function sealFrame(buf: Uint8Array, off: number, payloadBytes: number): number {
  const start = off + FRAME_HEADER_BYTES;
  const end = start + payloadBytes;
  if (end > buf.byteLength) throw new RangeError(`frame of ${payloadBytes} bytes at ${off} overruns a ${buf.byteLength}-byte buffer`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint32(off, payloadBytes, true);
  dv.setUint32(off + 4, crc32c(buf.subarray(start, end)), true);
  return end;
}

/** A frame around a copy of `payload` (for small control frames; hot paths use sealFrame). */
export function frame(payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  buf.set(payload, FRAME_HEADER_BYTES);
  sealFrame(buf, 0, payload.byteLength);
  return buf;
}

/**
 * Splits a byte stream into checked frame payloads. A payload handed to onFrame is
 * a view of memory the reader never writes again (a received chunk, or a fresh
 * concatenation of several), valid for as long as the callee keeps it.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Total size of the frame being collected (header included); -1 while its header is incomplete. */
  private need = -1;

  constructor(
    private readonly onFrame: (payload: Buffer) => void,
    /** May be raised later (e.g. once a connection's handshake is done). */
    public maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES,
  ) {}

  /** Bytes received and not yet handed out as a frame. */
  get buffered(): number {
    return this.bytes;
  }

  /** Feeds received bytes. Throws TransportFrameError (or whatever onFrame throws); then discard the reader. */
  push(chunk: Buffer): void {
    if (this.bytes > 0) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      if (this.need < 0) {
        if (this.bytes < FRAME_HEADER_BYTES) return;
        if (this.chunks[0]!.length < FRAME_HEADER_BYTES) this.chunks = [Buffer.concat(this.chunks, this.bytes)];
        this.need = FRAME_HEADER_BYTES + this.checkLength(this.chunks[0]!.readUInt32LE(0));
      }
      if (this.bytes < this.need) return;
      chunk = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
      this.chunks = [];
      this.bytes = 0;
      this.need = -1;
    }
    this.scan(chunk);
  }

  private scan(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    while (n - off >= FRAME_HEADER_BYTES) {
      const len = this.checkLength(chunk.readUInt32LE(off));
      const end = off + FRAME_HEADER_BYTES + len;
      if (end > n) {
        this.keep(chunk, off, FRAME_HEADER_BYTES + len);
        return;
      }
      const payload = chunk.subarray(off + FRAME_HEADER_BYTES, end);
      const want = chunk.readUInt32LE(off + 4);
      const got = crc32c(payload);
      if (got !== want) {
        throw new TransportFrameError('checksum', `frame checksum mismatch: header 0x${want.toString(16)}, payload 0x${got.toString(16)} (${len} bytes)`);
      }
      off = end;
      this.onFrame(payload);
    }
    if (off < n) this.keep(chunk, off, -1);
  }

  private keep(chunk: Buffer, off: number, need: number): void {
    const rest = chunk.subarray(off);
    this.chunks = [rest];
    this.bytes = rest.length;
    this.need = need;
  }

  private checkLength(len: number): number {
    if (len > this.maxFrameBytes) {
      throw new TransportFrameError('too-large', `frame of ${len} bytes exceeds the ${this.maxFrameBytes}-byte limit`);
    }
    return len;
  }
}
