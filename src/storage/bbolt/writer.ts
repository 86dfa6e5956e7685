// A bbolt file written in one pass, bulk-loaded: every bucket's pairs arrive in
// ascending key order and fill leaf pages completely (bbolt's own compaction
// does the same with FillPercent 1), so no page is ever rewritten. A leaf
// whose pairs overflow one page (values of half a page or more) keeps taking
// pairs until its pages are 90% full (or MAX_LEAF_PAGES): one 4 KiB value to a
// two-page leaf wasted half the file (an etsd snapshot was 33% larger than
// etcd's, which puts two such values in three pages). Pages are
// numbered in the order they fill and written straight to the file; a bucket
// keeps only its current leaf and the (first key, page) list of the level
// above, so memory is one page plus 1/100th of the keys' bytes. The meta pages
// (0, 1) and the empty freelist (2) are written last, pointing at the root
// bucket, and the file is exactly pgid * pageSize bytes with every page
// reachable: bbolt's tx.Check (which `etcdctl snapshot status` runs) holds.
//
// Limits: a key or value is at most 2^32-1 bytes (the element fields), and a
// page at most 65535 elements (u16 count), which a 4 KiB page cannot pass.

import * as fs from 'node:fs';
import {
  BUCKET_HEADER, DEFAULT_PAGE_SIZE, ELEMENT, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, LEAF_BUCKET, PAGE_HEADER, writeMetaPage,
} from './layout.js';

const FIRST_DATA_PAGE = 3; // 0, 1: meta; 2: freelist
const MAX_ELEMENTS = 0xffff;
/** A multi-page leaf grows to at most this many pages (bbolt reads a page with its overflow whole). */
const MAX_LEAF_PAGES = 16;
/** A leaf is flushed at a page boundary once this share of its pages is used. */
const FULL_ENOUGH = 0.9;

interface Item { key: Buffer; value: Buffer; flags: number }
interface Child { key: Buffer; pgid: number }

/** The file being written. Create buckets with bucket(), then finish() with the root's children. */
export class BboltWriter {
  private next = FIRST_DATA_PAGE;
  private closed = false;
  readonly fd: number;

  constructor(readonly path: string, readonly pageSize = DEFAULT_PAGE_SIZE) {
    if (pageSize < 1024 || (pageSize & (pageSize - 1)) !== 0) throw new RangeError(`bbolt page size ${pageSize} is not a power of two >= 1024`);
    this.fd = fs.openSync(path, 'w');
  }

  /** A new bucket; put its pairs in ascending key order, then finish() it to learn its root page. */
  bucket(): BucketBuilder { return new BucketBuilder(this); }

  /** Numbers and writes one page (with its overflow pages): `page` is a whole number of pages. */
  writePage(page: Buffer): number {
    if (this.closed) throw new Error('bbolt writer is closed');
    const id = this.next;
    const pages = page.length / this.pageSize;
    page.writeBigUInt64LE(BigInt(id), 0);
    page.writeUInt32LE(pages - 1, 12);
    writeFully(this.fd, page, id * this.pageSize);
    this.next += pages;
    return id;
  }

  /**
   * Writes the root bucket (top-level buckets, names ascending), the freelist and both metas,
   * fdatasyncs and closes. Returns the file size.
   */
  finish(buckets: { name: Buffer; root: number }[]): number {
    const root = this.bucket();
    for (const b of buckets) root.putBucket(b.name, b.root);
    const rootPgid = root.finish();
    const ps = this.pageSize;
    const freelist = Buffer.alloc(ps);
    freelist.writeBigUInt64LE(2n, 0);
    freelist.writeUInt16LE(FLAG_FREELIST, 8);
    writeFully(this.fd, freelist, 2 * ps);
    // Two identical metas one transaction apart, as a fresh bbolt has after its first commit.
    for (const txid of [2, 3]) {
      const page = Buffer.alloc(ps);
      writeMetaPage(page, { pageSize: ps, flags: 0, root: rootPgid, sequence: 0n, freelist: 2, pgid: this.next, txid });
      writeFully(this.fd, page, (txid % 2) * ps);
    }
    fs.fdatasyncSync(this.fd);
    this.close();
    return this.next * ps;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

function writeFully(fd: number, b: Buffer, pos: number): void {
  for (let off = 0; off < b.length;) off += fs.writeSync(fd, b, off, b.length - off, pos + off);
}

/** One bucket's B+tree, built bottom-up while its pairs stream in. */
export class BucketBuilder {
  private items: Item[] = [];
  private bytes = PAGE_HEADER;
  private leaves: Child[] = [];
  private last: Buffer | null = null;
  private done = false;
  count = 0;

  constructor(private readonly w: BboltWriter) {}

  put(key: Uint8Array, value: Uint8Array): void { this.add(key, value, 0); }

  /** A nested bucket (already finished) under `name`. */
  putBucket(name: Uint8Array, root: number): void {
    const v = Buffer.alloc(BUCKET_HEADER);
    v.writeBigUInt64LE(BigInt(root), 0);
    this.add(name, v, LEAF_BUCKET);
  }

  private add(key: Uint8Array, value: Uint8Array, flags: number): void {
    if (this.done) throw new Error('bbolt bucket already finished');
    const k = Buffer.from(key);
    if (k.length === 0) throw new RangeError('bbolt keys cannot be empty');
    if (this.last && Buffer.compare(this.last, k) >= 0) throw new Error(`bbolt keys out of order: ${k.toString('hex')} after ${this.last.toString('hex')}`);
    const need = ELEMENT + k.length + value.length;
    if (this.items.length > 0 && (this.items.length === MAX_ELEMENTS || this.fullFor(need))) this.flushLeaf();
    this.items.push({ key: k, value: Buffer.from(value), flags });
    this.bytes += need;
    this.last = k;
    this.count++;
  }

  /**
   * True when the current leaf should be written before a pair of `need` bytes:
   * the pair would start another page and the leaf's pages are already
   * FULL_ENOUGH used (a one-page leaf of small pairs always is), or the leaf
   * would pass MAX_LEAF_PAGES.
   */
  private fullFor(need: number): boolean {
    const ps = this.w.pageSize;
    const pages = Math.ceil(this.bytes / ps);
    if (this.bytes + need <= pages * ps) return false;
    return this.bytes >= FULL_ENOUGH * pages * ps || this.bytes + need > MAX_LEAF_PAGES * ps;
  }

  private flushLeaf(): void {
    const page = this.pageFor(this.bytes);
    page.writeUInt16LE(FLAG_LEAF, 8);
    page.writeUInt16LE(this.items.length, 10);
    let data = PAGE_HEADER + ELEMENT * this.items.length;
    this.items.forEach((it, i) => {
      const el = PAGE_HEADER + ELEMENT * i;
      page.writeUInt32LE(it.flags, el);
      page.writeUInt32LE(data - el, el + 4);
      page.writeUInt32LE(it.key.length, el + 8);
      page.writeUInt32LE(it.value.length, el + 12);
      it.key.copy(page, data);
      it.value.copy(page, data + it.key.length);
      data += it.key.length + it.value.length;
    });
    this.leaves.push({ key: this.items[0]?.key ?? Buffer.alloc(0), pgid: this.w.writePage(page) });
    this.items = [];
    this.bytes = PAGE_HEADER;
  }

  private pageFor(bytes: number): Buffer {
    const ps = this.w.pageSize;
    return Buffer.alloc(Math.ceil(bytes / ps) * ps);
  }

  /** Writes what is left and the branch levels above; returns the root page id. */
  finish(): number {
    if (this.done) throw new Error('bbolt bucket already finished');
    // An empty bucket still gets a (empty) leaf page as its root.
    if (this.items.length > 0 || this.leaves.length === 0) this.flushLeaf();
    this.done = true;
    let level = this.leaves;
    while (level.length > 1) level = this.branchLevel(level);
    return level[0]!.pgid;
  }

  private branchLevel(children: Child[]): Child[] {
    const groups: Child[][] = [[]];
    let bytes = PAGE_HEADER;
    for (const c of children) {
      const need = ELEMENT + c.key.length;
      const g = groups[groups.length - 1]!;
      // A branch keeps at least two children (bbolt's minKeys for branches).
      if (g.length >= 2 && (bytes + need > this.w.pageSize || g.length === MAX_ELEMENTS - 1)) { groups.push([]); bytes = PAGE_HEADER; }
      groups[groups.length - 1]!.push(c);
      bytes += need;
    }
    // A lone last child joins the group before it (that page may overflow, which bbolt allows).
    if (groups.length > 1 && groups[groups.length - 1]!.length === 1) groups[groups.length - 2]!.push(groups.pop()![0]!);
    return groups.map((group) => {
      const size = group.reduce((n, c) => n + ELEMENT + c.key.length, PAGE_HEADER);
      const page = this.pageFor(size);
      page.writeUInt16LE(FLAG_BRANCH, 8);
      page.writeUInt16LE(group.length, 10);
      let data = PAGE_HEADER + ELEMENT * group.length;
      group.forEach((c, i) => {
        const el = PAGE_HEADER + ELEMENT * i;
        page.writeUInt32LE(data - el, el);
        page.writeUInt32LE(c.key.length, el + 4);
        page.writeBigUInt64LE(BigInt(c.pgid), el + 8);
        c.key.copy(page, data);
        data += c.key.length;
      });
      return { key: group[0]!.key, pgid: this.w.writePage(page) };
    });
  }
}
