// Single-producer single-consumer byte ring over a SharedArrayBuffer.
//
// Layout of the SharedArrayBuffer:
//   [0, 64)     head: Int32 counter of bytes published by the producer
//   [64, 128)   tail: Int32 counter of bytes released by the consumer
//   [128, 192)  consumer-sleeping flag (set by the consumer before it waits)
//   [192, 256)  producer-waiting flag (set by the producer before it waits)
//   [256, ...)  data area, `capacity` bytes (a power of two)
//
// head and tail are free-running counters that wrap at 2^32 (kept as Int32);
// the byte position is `counter & (capacity - 1)` and the used size is
// `(head - tail) | 0`, which stays correct across the wrap because
// capacity <= 2^30.
//
// A record is a 4-byte little-endian Int32 length followed by the payload,
// padded so every record starts on an 8-byte boundary. A record never wraps:
// when it does not fit before the end of the data area the producer writes a
// wrap marker (length -1) and puts the record at position 0, publishing both
// with one head update. A record's total size (header + payload + padding) is
// at most capacity/2, so a record always fits in an empty ring whatever the
// head position.
//
// Memory ordering: the producer writes the record with plain stores, then
// Atomics.store(head). The consumer Atomics.load(head) before reading, so the
// record bytes are visible (Atomics are sequentially consistent). The same
// holds in the other direction for tail and the freed space.
//
// Wake-ups: a side that is about to block sets its flag, re-checks the
// condition, then waits on the other side's counter word with the value it
// observed (so a change between the check and the wait returns at once). The
// other side calls Atomics.notify only if the flag is set. Both sides use
// sequentially consistent stores then loads (flag/counter), so at least one of
// them sees the other's write: no lost wake-up.

const HEAD = 0; // Int32 index of head (byte offset 0)
const TAIL = 16; // byte offset 64
const CONSUMER_SLEEPING = 32; // byte offset 128
const PRODUCER_WAITING = 48; // byte offset 192

/** Bytes of control area before the data area. */
export const RING_HEADER_BYTES = 256;
/** Bytes of the per-record length header. */
export const RING_RECORD_HEADER_BYTES = 4;
/** Smallest and largest capacity accepted by Ring.allocate. */
export const RING_MIN_CAPACITY = 64;
export const RING_MAX_CAPACITY = 1 << 30;

const WRAP_MARKER = -1;
/** Default number of polls before a blocking wait. */
export const RING_DEFAULT_SPIN = 64;

export class RingRecordTooLargeError extends RangeError {
  readonly code = 'ETSD_RING_RECORD_TOO_LARGE';
  constructor(
    readonly length: number,
    readonly maxLength: number,
  ) {
    super(`ring record of ${length} bytes exceeds the maximum of ${maxLength} bytes`);
    this.name = 'RingRecordTooLargeError';
  }
}

/** The consumer found bytes that cannot be a record: a bug or memory corruption. */
export class RingCorruptError extends Error {
  readonly code = 'ETSD_RING_CORRUPT';
  constructor(message: string) {
    super(message);
    this.name = 'RingCorruptError';
  }
}

export interface RingOptions {
  /**
   * A 4-byte SharedArrayBuffer shared by several rings with one consumer:
   * producers also ring it when the consumer sleeps, so the consumer can
   * block on all of its rings at once (waitAnyReadable).
   */
  doorbell?: SharedArrayBuffer;
  /** Polls of the condition before blocking in a wait (default RING_DEFAULT_SPIN). */
  spin?: number;
}

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };
// Atomics.waitAsync exists in Node 20 (V8 11.3) but not in the ES2022 lib.
const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number, timeout?: number): WaitAsyncResult;
}).waitAsync;

/**
 * Atomics.waitAsync does not keep Node's event loop alive, and its timeout
 * only fires while something else does. With a finite timeout, race a ref'd
 * timer so the timeout behaves like setTimeout. Without one, the wait is
 * unref'd: the other thread (a ref'd Worker) is what keeps the process up.
 */
async function waitAsyncRef(ctl: Int32Array, index: number, value: number, timeoutMs: number): Promise<void> {
  if (!(timeoutMs < Infinity)) {
    const r = waitAsync(ctl, index, value);
    if (r.async) await r.value;
    return;
  }
  const r = waitAsync(ctl, index, value, timeoutMs);
  if (!r.async) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([r.value, timeout]);
  clearTimeout(timer);
}

const align8 = (n: number): number => (n + 7) & ~7;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class Ring {
  /**
   * Allocate the SharedArrayBuffer for a ring of `capacityBytes` data bytes
   * (a power of two). `initialCounter` (a multiple of 8) starts head and tail
   * at that value; it exists so tests can exercise the 2^32 counter wrap.
   */
  static allocate(capacityBytes: number, initialCounter = 0): SharedArrayBuffer {
    if (!isPowerOfTwo(capacityBytes) || capacityBytes < RING_MIN_CAPACITY || capacityBytes > RING_MAX_CAPACITY) {
      throw new RangeError(
        `ring capacity must be a power of two in [${RING_MIN_CAPACITY}, ${RING_MAX_CAPACITY}], got ${capacityBytes}`,
      );
    }
    if (!Number.isInteger(initialCounter) || initialCounter % 8 !== 0) {
      throw new RangeError(`initialCounter must be a multiple of 8, got ${initialCounter}`);
    }
    const sab = new SharedArrayBuffer(RING_HEADER_BYTES + capacityBytes);
    const ctl = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    ctl[HEAD] = initialCounter | 0;
    ctl[TAIL] = initialCounter | 0;
    return sab;
  }

  readonly capacity: number;
  /** Largest payload accepted by tryWrite/reserve. */
  readonly maxPayload: number;
  readonly sab: SharedArrayBuffer;
  private readonly ctl: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  private readonly mask: number;
  private readonly spin: number;
  /** The data area as one Buffer (what drain and drainInPlace walk), made on first use. */
  private area: Buffer | null = null;
  private readonly door: Int32Array | null;

  // Producer-side state. cachedTail is a lower bound of the real tail.
  private cachedTail: number;
  private reservedAt = -1; // head counter at reserve(), -1 if none
  private reservedPos = 0; // byte position of the reserved record
  private reservedLen = 0;
  private reservedSkip = 0; // bytes skipped by a wrap marker
  private lastNeed = 0; // bytes a failed write needed (for waitWritable)
  private corked = 0; // > 0: commits publish but do not wake the consumer
  private wakePending = false;

  // Consumer-side state. cachedHead is a lower bound of the real head.
  private cachedHead: number;

  constructor(sab: SharedArrayBuffer, opts: RingOptions = {}) {
    const capacity = sab.byteLength - RING_HEADER_BYTES;
    if (!isPowerOfTwo(capacity) || capacity < RING_MIN_CAPACITY) {
      throw new RangeError(`SharedArrayBuffer of ${sab.byteLength} bytes is not a ring (use Ring.allocate)`);
    }
    this.sab = sab;
    this.capacity = capacity;
    this.mask = capacity - 1;
    this.maxPayload = capacity / 2 - 8;
    this.spin = Math.max(0, Math.floor(opts.spin ?? RING_DEFAULT_SPIN));
    this.door = opts.doorbell ? new Int32Array(opts.doorbell, 0, 1) : null;
    this.ctl = new Int32Array(sab, 0, RING_HEADER_BYTES >> 2);
    this.bytes = new Uint8Array(sab, RING_HEADER_BYTES, capacity);
    this.words = new Int32Array(sab, RING_HEADER_BYTES, capacity >> 2);
    this.cachedTail = Atomics.load(this.ctl, TAIL);
    this.cachedHead = Atomics.load(this.ctl, HEAD);
  }

  // ---------------------------------------------------------------- producer

  /** Write one record. False if there is no space now (apply backpressure). */
  tryWrite(payload: Uint8Array): boolean {
    const view = this.reserve(payload.length);
    if (view === null) return false;
    view.set(payload);
    this.commit();
    return true;
  }

  /**
   * Write one record without waking a sleeping consumer: for one that another
   * signal is sure to send here soon (it finds the record when it looks).
   */
  tryWriteQuiet(payload: Uint8Array): boolean {
    const pending = this.wakePending;
    this.corked++;
    try {
      return this.tryWrite(payload);
    } finally {
      this.corked--;
      this.wakePending = pending;
    }
  }

  /** Write one record made of several pieces, without concatenating them. */
  tryWriteParts(parts: Uint8Array[]): boolean {
    let len = 0;
    for (let i = 0; i < parts.length; i++) len += parts[i]!.length;
    let at = this.reserveAt(len);
    if (at < 0) return false;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      this.bytes.set(p, at);
      at += p.length;
    }
    this.commit();
    return true;
  }

  /**
   * A writable view for one record of `len` bytes, or null if the ring has
   * no room now. Nothing is visible to the consumer until commit(). Only one
   * reservation may be open at a time.
   */
  reserve(len: number): Uint8Array | null {
    const start = this.reserveAt(len);
    return start < 0 ? null : this.bytes.subarray(start, start + len);
  }

  /** reserve() as the offset of the record's payload in the data area (-1: no room now), without a view. */
  private reserveAt(len: number): number {
    if (this.reservedAt !== -1) throw new Error('ring: reserve() called with a reservation open; commit() first');
    if (!Number.isInteger(len) || len < 0) throw new RangeError(`ring record length must be a non-negative integer, got ${len}`);
    if (len > this.maxPayload) throw new RingRecordTooLargeError(len, this.maxPayload);
    const head = Atomics.load(this.ctl, HEAD);
    const pos = head & this.mask;
    const size = align8(RING_RECORD_HEADER_BYTES + len);
    const toEnd = this.capacity - pos;
    const skip = size > toEnd ? toEnd : 0;
    const need = skip + size;
    if (!this.hasSpace(head, need)) {
      this.lastNeed = need;
      return -1;
    }
    this.lastNeed = 0;
    this.reservedAt = head;
    this.reservedPos = skip === 0 ? pos : 0;
    this.reservedLen = len;
    this.reservedSkip = skip;
    return this.reservedPos + RING_RECORD_HEADER_BYTES;
  }

  /**
   * Publish the reserved record. `len` may shrink the record below the
   * reserved length (reserve the maximum, commit what was written).
   */
  commit(len: number = this.reservedLen): void {
    const head = this.reservedAt;
    if (head === -1) throw new Error('ring: commit() without reserve()');
    if (!Number.isInteger(len) || len < 0 || len > this.reservedLen) {
      throw new RangeError(`ring commit length ${len} outside [0, ${this.reservedLen}]`);
    }
    if (this.reservedSkip !== 0) this.words[(head & this.mask) >> 2] = WRAP_MARKER;
    this.words[this.reservedPos >> 2] = len;
    const advance = this.reservedSkip + align8(RING_RECORD_HEADER_BYTES + len);
    this.reservedAt = -1;
    Atomics.store(this.ctl, HEAD, (head + advance) | 0);
    if (this.corked > 0) this.wakePending = true;
    else if (Atomics.load(this.ctl, CONSUMER_SLEEPING) !== 0) this.wakeConsumer();
  }

  private wakeConsumer(): void {
    Atomics.notify(this.ctl, HEAD);
    if (this.door) {
      Atomics.add(this.door, 0, 1);
      Atomics.notify(this.door, 0);
    }
  }

  /**
   * Producer: hold back wake-ups until uncork(), so a consumer woken by the
   * first record of a batch does not start on it alone while the rest is
   * still being written (it would split one group commit into many).
   */
  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked === 0 || --this.corked > 0) return;
    this.flushWake();
  }

  /** A producer about to wait for space must wake the consumer it held back. */
  private flushWake(): void {
    if (!this.wakePending) return;
    this.wakePending = false;
    if (Atomics.load(this.ctl, CONSUMER_SLEEPING) !== 0) this.wakeConsumer();
  }

  /** Consumer side of waitAnyReadable: flag this ring's consumer as sleeping (or awake). */
  setSleeping(sleeping: boolean): void {
    Atomics.store(this.ctl, CONSUMER_SLEEPING, sleeping ? 1 : 0);
  }

  hasData(): boolean {
    return this.readableNow();
  }

  /** Drop an open reservation without publishing it. */
  abort(): void {
    this.reservedAt = -1;
  }

  private hasSpace(head: number, need: number): boolean {
    if (this.capacity - ((head - this.cachedTail) | 0) >= need) return true;
    this.cachedTail = Atomics.load(this.ctl, TAIL);
    return this.capacity - ((head - this.cachedTail) | 0) >= need;
  }

  /** Free bytes needed by the last failed write (0 if none failed), for waits. */
  private neededBytes(): number {
    return this.lastNeed === 0 ? 8 : this.lastNeed;
  }

  private writableNow(): boolean {
    return this.hasSpace(Atomics.load(this.ctl, HEAD), this.neededBytes());
  }

  /**
   * Producer blocks (Atomics.wait, so worker threads only) until the write
   * that last failed would fit, or until `timeoutMs` passes. True if it fits.
   */
  waitWritable(timeoutMs: number): boolean {
    this.flushWake();
    if (this.writableNow()) return true;
    for (let i = 0; i < this.spin; i++) if (this.writableNow()) return true;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      Atomics.store(this.ctl, PRODUCER_WAITING, 1);
      const tail = Atomics.load(this.ctl, TAIL);
      if (this.writableNow()) break;
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(this.ctl, TAIL, tail, left);
    }
    Atomics.store(this.ctl, PRODUCER_WAITING, 0);
    return this.writableNow();
  }

  /**
   * Producer on the main thread: resolves when the write that last failed
   * would fit, or after `timeoutMs` (default: no timeout). Re-check with
   * tryWrite after it resolves.
   */
  async waitWritableAsync(timeoutMs = Infinity): Promise<void> {
    this.flushWake();
    if (this.writableNow()) return;
    for (let i = 0; i < this.spin; i++) if (this.writableNow()) return;
    const deadline = performance.now() + timeoutMs;
    try {
      for (;;) {
        Atomics.store(this.ctl, PRODUCER_WAITING, 1);
        const tail = Atomics.load(this.ctl, TAIL);
        if (this.writableNow()) return;
        const left = deadline - performance.now();
        if (left <= 0) return;
        await waitAsyncRef(this.ctl, TAIL, tail, left);
      }
    } finally {
      Atomics.store(this.ctl, PRODUCER_WAITING, 0);
    }
  }

  // ---------------------------------------------------------------- consumer

  /** Copy one record out, or null if the ring is empty. */
  read(): Buffer | null {
    let out: Buffer | null = null;
    this.drain((view) => {
      out = Buffer.allocUnsafe(view.length);
      out.set(view);
    }, 1);
    return out;
  }

  /**
   * Hand up to `max` records to `fn` as views into the ring (valid only during
   * the call; copy what you keep), then release their space with one tail
   * update. If `fn` throws, the records handed out so far, including the one
   * that threw, are released (a poison record is not redelivered) and the
   * error propagates. Returns the number of records handed out.
   */
  drain(fn: (view: Uint8Array) => void, max = Infinity): number {
    return this.walk(max, (area, at, len) => fn(area.subarray(at, at + len)));
  }

  /**
   * drain() without a view per record: `fn` gets the whole data area and the
   * record's offset and length in it (valid only during the call), for a
   * consumer that copies records out anyway.
   */
  drainInPlace(fn: (area: Buffer, at: number, len: number) => void, max = Infinity): number {
    return this.walk(max, fn);
  }

  /** The consumer's loop: hands each record's payload offset and length in the data area to `visit`, then releases them. */
  private walk(max: number, visit: (area: Buffer, at: number, len: number) => void): number {
    const area = (this.area ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength));
    const start = Atomics.load(this.ctl, TAIL);
    const head = (this.cachedHead = Atomics.load(this.ctl, HEAD));
    let tail = start;
    let count = 0;
    try {
      while (tail !== head && count < max) {
        let pos = tail & this.mask;
        let len = this.words[pos >> 2]!;
        if (len === WRAP_MARKER) {
          tail = (tail + (this.capacity - pos)) | 0;
          if (tail === head) this.corrupt(`wrap marker at ${pos} with no record after it`);
          pos = 0;
          len = this.words[0]!;
        }
        if (len < 0 || len > this.maxPayload || ((head - tail) | 0) < align8(RING_RECORD_HEADER_BYTES + len)) {
          this.corrupt(`bad record length ${len} at ${pos}`);
        }
        tail = (tail + align8(RING_RECORD_HEADER_BYTES + len)) | 0;
        count++;
        visit(area, pos + RING_RECORD_HEADER_BYTES, len);
      }
    } finally {
      if (tail !== start) this.release(tail);
    }
    return count;
  }

  private release(tail: number): void {
    Atomics.store(this.ctl, TAIL, tail);
    if (Atomics.load(this.ctl, PRODUCER_WAITING) !== 0) Atomics.notify(this.ctl, TAIL);
  }

  private corrupt(what: string): never {
    throw new RingCorruptError(`ring corrupt: ${what} (capacity ${this.capacity})`);
  }

  private readableNow(): boolean {
    const tail = Atomics.load(this.ctl, TAIL);
    if (this.cachedHead !== tail) return true;
    this.cachedHead = Atomics.load(this.ctl, HEAD);
    return this.cachedHead !== tail;
  }

  /**
   * Consumer blocks (Atomics.wait, so worker threads only) until a record may
   * be there or `timeoutMs` passes. True if the ring is not empty.
   */
  waitReadable(timeoutMs: number): boolean {
    if (this.readableNow()) return true;
    for (let i = 0; i < this.spin; i++) if (this.readableNow()) return true;
    Atomics.store(this.ctl, CONSUMER_SLEEPING, 1);
    const head = Atomics.load(this.ctl, HEAD);
    if (!this.readableNow()) Atomics.wait(this.ctl, HEAD, head, timeoutMs);
    Atomics.store(this.ctl, CONSUMER_SLEEPING, 0);
    return this.readableNow();
  }

  /**
   * Consumer on the main thread: resolves when a record may be there, or
   * after `timeoutMs` (default: no timeout).
   */
  async waitReadableAsync(timeoutMs = Infinity): Promise<void> {
    if (this.readableNow()) return;
    for (let i = 0; i < this.spin; i++) if (this.readableNow()) return;
    Atomics.store(this.ctl, CONSUMER_SLEEPING, 1);
    try {
      const head = Atomics.load(this.ctl, HEAD);
      if (this.readableNow()) return;
      await waitAsyncRef(this.ctl, HEAD, head, timeoutMs);
    } finally {
      Atomics.store(this.ctl, CONSUMER_SLEEPING, 0);
    }
  }

  /**
   * Main thread, consumer side: end a pending waitReadableAsync now (it resolves on the
   * next turn of the event loop), so its caller can decide again how to wait. Only
   * wakes a consumer that is asleep; costs nothing otherwise.
   */
  interruptAsyncWait(): void {
    if (Atomics.load(this.ctl, CONSUMER_SLEEPING) !== 0) Atomics.notify(this.ctl, HEAD);
  }

  // ------------------------------------------------------------------ either

  isEmpty(): boolean {
    return Atomics.load(this.ctl, HEAD) === Atomics.load(this.ctl, TAIL);
  }

  /** Bytes published and not yet released (headers, padding and wrap skips included). */
  usedBytes(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) | 0;
  }
}

/**
 * Blocks a worker until any of `rings` may hold a record, or `timeoutMs`
 * passes. Every ring must have been constructed with the same `doorbell`,
 * on both the producer and the consumer side.
 */
export function waitAnyReadable(rings: Ring[], doorbell: SharedArrayBuffer, timeoutMs: number): boolean {
  for (const r of rings) if (r.hasData()) return true;
  const door = new Int32Array(doorbell, 0, 1);
  for (const r of rings) r.setSleeping(true);
  const seq = Atomics.load(door, 0);
  let ready = rings.some((r) => r.hasData());
  if (!ready) {
    Atomics.wait(door, 0, seq, timeoutMs);
    ready = rings.some((r) => r.hasData());
  }
  for (const r of rings) r.setSleeping(false);
  return ready;
}
