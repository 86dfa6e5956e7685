// The on-disk layout of a bbolt (go.etcd.io/bbolt, format version 2) file,
// as both the writer and the reader see it. Little-endian throughout (bbolt
// writes its structs in host order; etcd runs on little-endian machines).
//
//   page header (16 B)     u64 id | u16 flags | u16 count | u32 overflow
//   meta (after header)    u32 magic | u32 version | u32 pageSize | u32 flags
//                          | u64 root.root | u64 root.sequence | u64 freelist
//                          | u64 pgid (high-water mark) | u64 txid | u64 checksum
//                          checksum = FNV-64a of the 56 bytes before it
//   branch element (16 B)  u32 pos | u32 ksize | u64 pgid
//   leaf element (16 B)    u32 flags | u32 pos | u32 ksize | u32 vsize
//                          pos counts from the element's own first byte to its key;
//                          a leaf value follows its key
//   bucket value           u64 root | u64 sequence, then, if root is 0, an inline leaf page
//   freelist page          count u64 page ids (count 0xffff: the first u64 holds the count)
//
// A page spans 1 + overflow consecutive pages. Pages 0 and 1 are the two meta
// pages; the one with the higher txid whose checksum holds is current.

export const PAGE_HEADER = 16;
export const ELEMENT = 16;
export const META_BYTES = 64;
export const META_SUM_BYTES = 56;

export const FLAG_BRANCH = 0x01;
export const FLAG_LEAF = 0x02;
export const FLAG_META = 0x04;
export const FLAG_FREELIST = 0x10;

/** Leaf element flag: the value is a nested bucket. */
export const LEAF_BUCKET = 0x01;

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
export const DEFAULT_PAGE_SIZE = 4096;
export const BUCKET_HEADER = 16;

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-64a, bbolt's meta page checksum. */
export function fnv64a(b: Uint8Array): bigint {
  let h = FNV_OFFSET;
  for (let i = 0; i < b.length; i++) h = ((h ^ BigInt(b[i]!)) * FNV_PRIME) & MASK64;
  return h;
}

export interface Meta {
  pageSize: number;
  flags: number;
  root: number;
  sequence: bigint;
  freelist: number;
  pgid: number;
  txid: number;
  checksum: bigint;
}

/** Writes a meta page (header and meta, checksum computed) into `page` (one page, zeroed by the caller). */
export function writeMetaPage(page: Buffer, m: Omit<Meta, 'checksum'>): void {
  page.writeBigUInt64LE(BigInt(m.txid % 2), 0);
  page.writeUInt16LE(FLAG_META, 8);
  const o = PAGE_HEADER;
  page.writeUInt32LE(MAGIC, o);
  page.writeUInt32LE(VERSION, o + 4);
  page.writeUInt32LE(m.pageSize, o + 8);
  page.writeUInt32LE(m.flags, o + 12);
  page.writeBigUInt64LE(BigInt(m.root), o + 16);
  page.writeBigUInt64LE(m.sequence, o + 24);
  page.writeBigUInt64LE(BigInt(m.freelist), o + 32);
  page.writeBigUInt64LE(BigInt(m.pgid), o + 40);
  page.writeBigUInt64LE(BigInt(m.txid), o + 48);
  page.writeBigUInt64LE(fnv64a(page.subarray(o, o + META_SUM_BYTES)), o + 56);
}

export type MetaProblem = 'magic' | 'version' | 'checksum';

/** The meta in a meta page, and what (if anything) makes it invalid (bbolt's meta.validate order). */
export function readMeta(page: Buffer): { meta: Meta; problem: MetaProblem | null } {
  const o = PAGE_HEADER;
  const meta: Meta = {
    pageSize: page.readUInt32LE(o + 8),
    flags: page.readUInt32LE(o + 12),
    root: Number(page.readBigUInt64LE(o + 16)),
    sequence: page.readBigUInt64LE(o + 24),
    freelist: Number(page.readBigUInt64LE(o + 32)),
    pgid: Number(page.readBigUInt64LE(o + 40)),
    txid: Number(page.readBigUInt64LE(o + 48)),
    checksum: page.readBigUInt64LE(o + 56),
  };
  let problem: MetaProblem | null = null;
  if (page.readUInt32LE(o) !== MAGIC) problem = 'magic';
  else if (page.readUInt32LE(o + 4) !== VERSION) problem = 'version';
  // bbolt accepts a zero checksum (files from before checksums existed).
  else if (meta.checksum !== 0n && meta.checksum !== fnv64a(page.subarray(o, o + META_SUM_BYTES))) problem = 'checksum';
  return { meta, problem };
}
