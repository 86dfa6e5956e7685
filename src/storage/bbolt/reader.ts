// Reading a bbolt file: choose the current meta page (bbolt's rule: the higher
// txid among the metas that validate), then walk buckets page by page with
// positional reads, so a file of any size is read in constant memory (one
// page per tree level). Every page read is checked: its id, its type, and
// that its elements lie inside it; keys must ascend. A damaged file throws
// BboltFormatError instead of yielding wrong data.

import * as fs from 'node:fs';
import {
  BUCKET_HEADER, DEFAULT_PAGE_SIZE, ELEMENT, FLAG_BRANCH, FLAG_LEAF, FLAG_META, LEAF_BUCKET, PAGE_HEADER, readMeta, type Meta,
} from './layout.js';

export class BboltFormatError extends Error {
  override readonly name = 'BboltFormatError';
  constructor(message: string) { super(`bbolt: ${message}`); }
}

/** Where a bucket's tree starts: a page, or an inline leaf page held in the parent's value. */
export type BucketRef = { page: number } | { inline: Buffer };

export interface Entry { key: Buffer; value: Buffer; bucket: boolean }

export class BboltReader {
  readonly meta: Meta;
  readonly pageSize: number;
  private readonly fileBytes: number;

  private constructor(private readonly fd: number) {
    this.fileBytes = fs.fstatSync(fd).size;
    const first = this.readAt(0, DEFAULT_PAGE_SIZE);
    const m0 = readMeta(first);
    // The second meta sits one page further; when the first is unreadable, bbolt tries the default page size.
    const ps = m0.problem === null ? m0.meta.pageSize : DEFAULT_PAGE_SIZE;
    const m1 = readMeta(this.readAt(ps, PAGE_HEADER + 64));
    const valid = [m0, m1].filter((m) => m.problem === null).map((m) => m.meta);
    if (valid.length === 0) {
      const p = m0.problem ?? m1.problem;
      throw new BboltFormatError(p === 'magic' ? 'invalid database (bad magic)' : p === 'version' ? 'version mismatch' : 'meta page checksum mismatch');
    }
    this.meta = valid.reduce((a, b) => (b.txid > a.txid ? b : a));
    this.pageSize = this.meta.pageSize;
    if (this.meta.pgid * this.pageSize > this.fileBytes) {
      throw new BboltFormatError(`file is ${this.fileBytes} bytes, its meta says ${this.meta.pgid} pages of ${this.pageSize}`);
    }
  }

  static open(path: string): BboltReader {
    const fd = fs.openSync(path, 'r');
    try { return new BboltReader(fd); } catch (err) { fs.closeSync(fd); throw err; }
  }

  close(): void { fs.closeSync(this.fd); }

  /** Both meta pages' state, for status output and tests. */
  metaProblems(): { page0: string | null; page1: string | null } {
    return {
      page0: readMeta(this.readAt(0, PAGE_HEADER + 64)).problem,
      page1: readMeta(this.readAt(this.pageSize, PAGE_HEADER + 64)).problem,
    };
  }

  /** Bytes in use (etcd's TotalSize: tx.Size() = pgid * pageSize). */
  get size(): number { return this.meta.pgid * this.pageSize; }

  get root(): BucketRef { return { page: this.meta.root }; }

  /** A nested bucket of `parent` by name, or null. */
  bucket(parent: BucketRef, name: Uint8Array): BucketRef | null {
    for (const e of this.entries(parent)) {
      const c = Buffer.compare(e.key, name);
      if (c === 0) return e.bucket ? this.bucketRef(e.value) : null;
      if (c > 0) return null;
    }
    return null;
  }

  bucketRef(value: Buffer): BucketRef {
    if (value.length < BUCKET_HEADER) throw new BboltFormatError(`bucket value of ${value.length} bytes`);
    const root = Number(value.readBigUInt64LE(0));
    return root !== 0 ? { page: root } : { inline: value.subarray(BUCKET_HEADER) };
  }

  /** Every pair of a bucket in key order (nested buckets appear with bucket: true). */
  *entries(b: BucketRef): Generator<Entry> {
    let last: Buffer | null = null;
    for (const e of 'inline' in b ? this.leafEntries(b.inline, -1) : this.pageEntries(b.page, 0)) {
      if (last && Buffer.compare(last, e.key) >= 0) throw new BboltFormatError(`keys out of order at ${e.key.toString('hex')}`);
      last = e.key;
      yield e;
    }
  }

  private *pageEntries(id: number, depth: number): Generator<Entry> {
    if (depth > 64) throw new BboltFormatError('tree deeper than 64 levels');
    const page = this.readPage(id);
    const flags = page.readUInt16LE(8);
    if (flags & FLAG_LEAF) { yield* this.leafEntries(page, id); return; }
    if (!(flags & FLAG_BRANCH)) throw new BboltFormatError(`page ${id}: invalid type ${flags.toString(16)} in a bucket`);
    const count = page.readUInt16LE(10);
    const children: number[] = [];
    for (let i = 0; i < count; i++) {
      const el = PAGE_HEADER + ELEMENT * i;
      this.within(page, el + ELEMENT, id);
      children.push(Number(page.readBigUInt64LE(el + 8)));
    }
    for (const c of children) yield* this.pageEntries(c, depth + 1);
  }

  private *leafEntries(page: Buffer, id: number): Generator<Entry> {
    const count = page.readUInt16LE(10);
    for (let i = 0; i < count; i++) {
      const el = PAGE_HEADER + ELEMENT * i;
      this.within(page, el + ELEMENT, id);
      const pos = el + page.readUInt32LE(el + 4);
      const ksize = page.readUInt32LE(el + 8);
      const vsize = page.readUInt32LE(el + 12);
      this.within(page, pos + ksize + vsize, id);
      yield {
        key: page.subarray(pos, pos + ksize),
        value: page.subarray(pos + ksize, pos + ksize + vsize),
        bucket: (page.readUInt32LE(el) & LEAF_BUCKET) !== 0,
      };
    }
  }

  private within(page: Buffer, end: number, id: number): void {
    if (end > page.length) throw new BboltFormatError(`page ${id}: element runs past the page`);
  }

  /** One page with its overflow pages. */
  readPage(id: number): Buffer {
    if (id < 2 || id >= this.meta.pgid) throw new BboltFormatError(`page ${id} out of bounds (high water mark ${this.meta.pgid})`);
    const head = this.readAt(id * this.pageSize, PAGE_HEADER);
    if (Number(head.readBigUInt64LE(0)) !== id) throw new BboltFormatError(`page ${id}: header says page ${head.readBigUInt64LE(0)}`);
    if (head.readUInt16LE(8) & FLAG_META) throw new BboltFormatError(`page ${id}: a meta page inside a bucket`);
    const pages = 1 + head.readUInt32LE(12);
    if (id + pages > this.meta.pgid) throw new BboltFormatError(`page ${id}: overflow past the high water mark`);
    return this.readAt(id * this.pageSize, pages * this.pageSize);
  }

  private readAt(pos: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, b, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    if (got < len) throw new BboltFormatError(`file ends at ${pos + got}, wanted ${len} bytes at ${pos}`);
    return b;
  }
}
