// The stored form of one version of a key ('l' and 'k' values):
//   u8 flags | u48 create | u48 mod | u48 version | i64 lease | u32 sub | value
// A tombstone has flags bit 0 set, create = version = 0 and no value.

export const RECORD_HEADER = 1 + 6 + 6 + 6 + 8 + 4;
const TOMBSTONE = 1;

export interface StoredVersion {
  tombstone: boolean;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
  sub: number;
  value: Buffer;
}

export function encodeVersion(v: StoredVersion): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER + v.value.length);
  writeVersionAt(out, 0, v);
  return out;
}

/** encodeVersion(v) written at `at` (RECORD_HEADER + v.value.length bytes); returns the offset past it. */
export function writeVersionAt(out: Buffer, at: number, v: StoredVersion): number {
  out[at] = v.tombstone ? TOMBSTONE : 0;
  out.writeUIntBE(v.createRevision, at + 1, 6);
  out.writeUIntBE(v.modRevision, at + 7, 6);
  out.writeUIntBE(v.version, at + 13, 6);
  writeLease(out, at + 19, v.lease);
  out.writeUInt32BE(v.sub, at + 27);
  out.set(v.value, at + RECORD_HEADER);
  return at + RECORD_HEADER + v.value.length;
}

/** i64 big-endian; the common lease 0 without BigInt arithmetic (writeBigInt64BE allocates). */
function writeLease(out: Buffer, at: number, lease: bigint): void {
  if (lease === 0n) {
    out.writeUInt32BE(0, at);
    out.writeUInt32BE(0, at + 4);
  } else {
    out.writeBigInt64BE(lease, at);
  }
}

export function decodeVersion(b: Buffer): StoredVersion {
  if (b.length < RECORD_HEADER) throw new Error(`stored version record too short (${b.length} bytes)`);
  return {
    tombstone: (b[0]! & TOMBSTONE) !== 0,
    createRevision: b.readUIntBE(1, 6),
    modRevision: b.readUIntBE(7, 6),
    version: b.readUIntBE(13, 6),
    lease: b.readBigInt64BE(19),
    sub: b.readUInt32BE(27),
    value: b.subarray(RECORD_HEADER),
  };
}

export function isTombstoneRecord(b: Buffer): boolean {
  return (b[0]! & TOMBSTONE) !== 0;
}

export function modRevisionOf(b: Buffer): number {
  return b.readUIntBE(7, 6);
}
