// Pre-encoded request bytes with holes. A request is encoded once with
// protobufjs; the hot loop copies the template into a per-client buffer and
// writes the key (and, for watch-latency, a timestamp) into the holes.
import type protobuf from 'protobufjs';
import { encodeFramed } from './proto.js';

export interface Template {
  bytes: Buffer;      // framed request (5-byte gRPC prefix + message)
  holes: number[];    // offsets of each hole; all holes have the same length
  holeLen: number;
}

/**
 * Encodes `build(hole)` twice, with the hole filled by 0x00 and by 0xff bytes,
 * and records where the two encodings differ. The hole must be a bytes field
 * (fixed length), so both encodings have the same length.
 */
export function makeTemplate(type: protobuf.Type, holeLen: number, build: (hole: Buffer) => Record<string, unknown>): Template {
  const a = encodeFramed(type, build(Buffer.alloc(holeLen, 0x00)));
  const b = encodeFramed(type, build(Buffer.alloc(holeLen, 0xff)));
  if (a.length !== b.length) throw new Error('template: hole changed the encoded length');
  const holes: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    holes.push(i);
    for (let j = 0; j < holeLen; j++) {
      if (a[i + j] === b[i + j]) throw new Error('template: hole bytes not contiguous');
    }
    i += holeLen - 1;
  }
  if (holes.length === 0) throw new Error('template: no hole found');
  return { bytes: a, holes, holeLen };
}

/** Per-client scratch buffers: a client has at most one request in flight. */
export class TemplateWriter {
  private readonly bufs: Buffer[] = [];
  constructor(readonly t: Template, clients: number) {
    for (let i = 0; i < clients; i++) this.bufs.push(Buffer.from(t.bytes));
  }

  /** Writes the latin1 string `s` (exactly holeLen chars) into every hole. */
  withString(client: number, s: string): Buffer {
    const buf = this.bufs[client]!;
    for (const off of this.t.holes) buf.write(s, off, this.t.holeLen, 'latin1');
    return buf;
  }

  /** Writes an absolute time (ms, float64) into the first 8 bytes of every hole. */
  withTime(client: number, ms: number): Buffer {
    const buf = this.bufs[client]!;
    for (const off of this.t.holes) buf.writeDoubleLE(ms, off);
    return buf;
  }
}

/** Random printable value bytes (etcd's tool uses random bytes too). */
export function randomValue(size: number): Buffer {
  const v = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) v[i] = 0x21 + Math.floor(Math.random() * 94);
  return v;
}
