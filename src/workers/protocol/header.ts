// The common head of ring records that name a type and two numbers:
//   u8 type | f64 a | f64 b          (17 bytes, little-endian)
// Every number that can pass 2^32 (indexes, terms, request ids) travels as a
// float64: exact below 2^53. Used by the WAL ring, shard ops and watch data.

export const OP_HEADER_BYTES = 17;

export function opHeader(type: number, a: number, b: number): Buffer {
  const h = Buffer.allocUnsafe(OP_HEADER_BYTES);
  writeOpHeader(h, type, a, b);
  return h;
}

/** opHeader into an existing buffer of at least OP_HEADER_BYTES. */
export function writeOpHeader(h: Buffer, type: number, a: number, b: number): void {
  h[0] = type;
  h.writeDoubleLE(a, 1);
  h.writeDoubleLE(b, 9);
}

export interface OpHead { type: number; a: number; b: number }

export function readOpHeader(b: Buffer): OpHead {
  return { type: b[0]!, a: b.readDoubleLE(1), b: b.readDoubleLE(9) };
}
