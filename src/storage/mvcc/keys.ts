// RocksDB key layout. One prefix byte per record family:
//   'l' + userKey                         -> latest state of the key (live or tombstone)
//   'k' + esc(userKey) + 00 01 + ~rev(6B)  -> the version written at main revision rev
//   'r' + rev(6B) + sub(4B)                -> userKey (the by-revision path: watch, compaction)
//   'm' + name                             -> member metadata (applied index, revisions, ...)
// esc() doubles 0x00 as 00 FF and ends the key with 00 01, so byte order of the
// encoded keys equals byte order of the user keys, and no key can run into the
// revision that follows it. Revisions are stored inverted in 'k' so that the
// newest version at or below a revision is the first entry of a seek.

export const PREFIX_LATEST = 0x6c; // 'l'
export const PREFIX_HISTORY = 0x6b; // 'k'
export const PREFIX_BYREV = 0x72; // 'r'
export const PREFIX_META = 0x6d; // 'm'
export const PREFIX_LEASE = 0x4c; // 'L' + id(8B) -> granted TTL
export const PREFIX_ATTACH = 0x61; // 'a' + id(8B) + userKey -> (empty): keys attached to a lease

/** Revisions are kept below 2^48 (6 bytes); etcd would need 8900 years at 1M writes/s to pass it. */
export const MAX_REV = 2 ** 48 - 1;

export function latestKey(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + key.length);
  writeLatestKeyAt(out, 0, key);
  return out;
}

/** latestKey(key) written at `at` (1 + key.length bytes); returns the offset past it. */
export function writeLatestKeyAt(out: Buffer, at: number, key: Uint8Array): number {
  out[at] = PREFIX_LATEST;
  out.set(key, at + 1);
  return at + 1 + key.length;
}

/** First 'l' key past every user key (the "to infinity" bound). */
export const LATEST_END = Buffer.from([PREFIX_LATEST + 1]);

export function userKeyFromLatest(k: Uint8Array): Buffer {
  return Buffer.from(k.buffer, k.byteOffset + 1, k.byteLength - 1);
}

function escapedLength(key: Uint8Array): number {
  let n = key.length + 2;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

function writeEscaped(key: Uint8Array, out: Buffer, at: number): number {
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    out[at++] = b;
    if (b === 0) out[at++] = 0xff;
  }
  out[at++] = 0x00;
  out[at++] = 0x01;
  return at;
}

/** 'k' key for (userKey, rev). */
export function historyKey(key: Uint8Array, rev: number): Buffer {
  const out = Buffer.allocUnsafe(historyKeyLength(key));
  writeHistoryKeyAt(out, 0, key, rev);
  return out;
}

export function historyKeyLength(key: Uint8Array): number {
  return 1 + escapedLength(key) + 6;
}

/** historyKey(key, rev) written at `at` (historyKeyLength(key) bytes); returns the offset past it. */
export function writeHistoryKeyAt(out: Buffer, at: number, key: Uint8Array, rev: number): number {
  out[at] = PREFIX_HISTORY;
  const end = writeEscaped(key, out, at + 1);
  out.writeUIntBE(MAX_REV - rev, end, 6);
  return end + 6;
}

/** Lower bound of all history entries of keys >= key (no revision part). */
export function historyKeyPrefix(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + escapedLength(key));
  out[0] = PREFIX_HISTORY;
  writeEscaped(key, out, 1);
  return out;
}

/** Lower bound of history entries of keys >= key, used as a scan start (drops the terminator). */
export function historyScanStart(key: Uint8Array): Buffer {
  const p = historyKeyPrefix(key);
  return p.subarray(0, p.length - 2);
}

/** Exclusive upper bound of every history entry of exactly this user key. */
export function historyKeyEnd(key: Uint8Array): Buffer {
  const p = historyKeyPrefix(key);
  p[p.length - 1] = 0x02; // 00 01 <rev> sorts below 00 02
  return p;
}

export const HISTORY_END = Buffer.from([PREFIX_HISTORY + 1]);

export interface DecodedHistoryKey { key: Buffer; rev: number }

export function decodeHistoryKey(k: Uint8Array): DecodedHistoryKey {
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  const end = b.length - 6;
  const raw = Buffer.allocUnsafe(end - 3);
  let n = 0;
  for (let i = 1; i < end - 2; i++) {
    const c = b[i]!;
    raw[n++] = c;
    if (c === 0) i++; // skip the 0xff escape
  }
  return { key: raw.subarray(0, n), rev: MAX_REV - b.readUIntBE(end, 6) };
}

export const BY_REV_KEY_BYTES = 11;

export function byRevKey(rev: number, sub: number): Buffer {
  const out = Buffer.allocUnsafe(BY_REV_KEY_BYTES);
  writeByRevKeyAt(out, 0, rev, sub);
  return out;
}

/** byRevKey(rev, sub) written at `at` (BY_REV_KEY_BYTES); returns the offset past it. */
export function writeByRevKeyAt(out: Buffer, at: number, rev: number, sub: number): number {
  out[at] = PREFIX_BYREV;
  out.writeUIntBE(rev, at + 1, 6);
  out.writeUInt32BE(sub, at + 7);
  return at + BY_REV_KEY_BYTES;
}

export function decodeByRevKey(k: Uint8Array): { rev: number; sub: number } {
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  return { rev: b.readUIntBE(1, 6), sub: b.readUInt32BE(7) };
}

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.from([PREFIX_META]), Buffer.from(name, 'latin1')]);
}

/**
 * Lexicographic end of a user range, or null for "no upper bound".
 * etcd: empty range_end = single key; "\0" = every key >= key.
 */
export function isFromKey(rangeEnd: Uint8Array): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

export function leaseKey(id: bigint): Buffer {
  const out = Buffer.allocUnsafe(9);
  out[0] = PREFIX_LEASE;
  out.writeBigUInt64BE(BigInt.asUintN(64, id), 1);
  return out;
}

export const LEASE_END = Buffer.from([PREFIX_LEASE + 1]);

export function leaseIdFromKey(k: Uint8Array): bigint {
  return BigInt.asIntN(64, Buffer.from(k.buffer, k.byteOffset, k.byteLength).readBigUInt64BE(1));
}

export function attachKey(id: bigint, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(9 + key.length);
  out[0] = PREFIX_ATTACH;
  out.writeBigUInt64BE(BigInt.asUintN(64, id), 1);
  out.set(key, 9);
  return out;
}

/** [start, end) of every attachment record of one lease. */
export function attachRange(id: bigint): { gte: Buffer; lt: Buffer } {
  const gte = attachKey(id, Buffer.alloc(0));
  const next = BigInt.asUintN(64, id) + 1n;
  const lt = Buffer.allocUnsafe(9);
  if (next > 0xffffffffffffffffn) { lt[0] = PREFIX_ATTACH + 1; lt.fill(0, 1); }
  else { lt[0] = PREFIX_ATTACH; lt.writeBigUInt64BE(next, 1); }
  return { gte, lt };
}
