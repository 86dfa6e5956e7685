// Many small byte strings (watched keys) in one growable buffer, so that each
// costs its bytes plus an 8-byte header instead of a Buffer object, a backing
// store and a slot in the V8 heap.
//
// Layout: blocks one after another from offset 0, each
//   u32 tag | u32 length | length bytes
// The owner names a block by the offset of its bytes (the header is just
// before); the tag tells the owner which of its records holds that offset.
// A freed block stays in place with the tag FREE until the next compaction.
//
// Compaction: when an allocation does not fit, the live blocks are copied in
// order to the front of a buffer sized for at least twice the live bytes
// (never below the initial size; the same buffer when that size does not
// change, moving blocks only towards the front), and the owner is told each
// block's new offset through relocate(tag, offset). So the buffer holds at
// most twice the live bytes after a compaction, and compaction work is paid
// for by the allocations that filled the free half.
// Bounds: less than 2^30 bytes of live blocks (offsets fit an Int32Array).

const HEADER = 8;
const FREE = 0xffffffff;
const MAX_BYTES = 2 ** 30;

export class ArenaFullError extends Error {
  constructor(bytes: number) {
    super(`byte arena: ${bytes} bytes would pass the bound of ${MAX_BYTES}`);
    this.name = 'ArenaFullError';
  }
}

export class ByteArena {
  /** The bytes; replaced by a compaction, so never keep it across an alloc(). */
  buf: Buffer;
  private used = 0;
  /** Bytes of live blocks, headers included. */
  private live = 0;

  constructor(private readonly relocate: (tag: number, offset: number) => void, private readonly minBytes = 64 * 1024) {
    this.buf = Buffer.alloc(minBytes);
  }

  /** Live bytes, headers included. */
  get liveBytes(): number { return this.live; }

  /** A block of `length` bytes for record `tag` (< 2^32 - 1); returns the offset of its bytes, to be filled by the caller. */
  alloc(tag: number, length: number): number {
    const need = HEADER + length;
    if (this.used + need > this.buf.length) this.compact(need);
    const at = this.used;
    this.buf.writeUInt32LE(tag, at);
    this.buf.writeUInt32LE(length, at + 4);
    this.used += need;
    this.live += need;
    return at + HEADER;
  }

  free(offset: number): void {
    const h = offset - HEADER;
    if (this.buf.readUInt32LE(h) === FREE) throw new Error(`byte arena: block at ${offset} freed twice`);
    this.buf.writeUInt32LE(FREE, h);
    this.live -= HEADER + this.buf.readUInt32LE(h + 4);
  }

  length(offset: number): number {
    return this.buf.readUInt32LE(offset - 4);
  }

  private compact(need: number): void {
    const wanted = this.live + need;
    if (wanted > MAX_BYTES) throw new ArenaFullError(wanted);
    let cap = this.minBytes;
    while (cap < 2 * wanted) cap *= 2;
    const old = this.buf;
    const next = cap === old.length ? old : Buffer.alloc(cap);
    let w = 0;
    for (let at = 0; at < this.used;) {
      const tag = old.readUInt32LE(at);
      const size = HEADER + old.readUInt32LE(at + 4);
      if (tag !== FREE) {
        if (w !== at || next !== old) old.copy(next, w, at, at + size);
        this.relocate(tag, w + HEADER);
        w += size;
      }
      at += size;
    }
    this.buf = next;
    this.used = w;
  }
}

/** a[0, a.length) against b[off, off + len): negative, zero or positive as a sorts before, with or after. */
export function compareBytes(a: Uint8Array, b: Uint8Array, off: number, len: number): number {
  const n = a.length < len ? a.length : len;
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[off + i]!;
    if (d !== 0) return d;
  }
  return a.length - len;
}

/** FNV-1a over the bytes. */
export function hashBytes(a: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i]!, 0x01000193);
  return h >>> 0;
}
