// One HTTP/2 server connection (RFC 9113) on a byte stream, without
// node:http2: frame parsing, stream states, HPACK decoding of request
// headers, flow control in both directions and batched output. It knows
// nothing about gRPC: it reports requests, DATA, half-close and resets to a
// StreamHost (the gRPC layer) and offers it ways to answer.
//
// Output: every frame is written into a per-connection slab (a bump
// allocator over 64 KiB buffers) or, for big bodies, kept as a reference;
// all of it goes to the socket in one write (or one corked writev) when the
// host's flusher runs, once per event-loop turn (setImmediate).
//
// Bounds: frames up to our SETTINGS_MAX_FRAME_SIZE; a header block up to
// maxHeaderListSize bytes (CONTINUATION included) and MAX_FIELDS fields;
// inbound DATA up to the windows we advertised (per stream and per
// connection); queued outbound bytes up to maxBufferedBytes (then the
// connection is dropped), and reading pauses while more than
// READ_PAUSE_BYTES wait in the socket.

import type { Socket } from 'node:net';
import { HeaderList, HpackDecoder, HpackError } from './hpack.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const enum FrameType {
  DATA = 0, HEADERS = 1, PRIORITY = 2, RST_STREAM = 3, SETTINGS = 4, PUSH_PROMISE = 5, PING = 6, GOAWAY = 7,
  WINDOW_UPDATE = 8, CONTINUATION = 9,
}

export const enum Flag { END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20 }

export const enum H2Code {
  NO_ERROR = 0, PROTOCOL_ERROR = 1, INTERNAL_ERROR = 2, FLOW_CONTROL_ERROR = 3, STREAM_CLOSED = 5,
  FRAME_SIZE_ERROR = 6, REFUSED_STREAM = 7, CANCEL = 8, COMPRESSION_ERROR = 9, ENHANCE_YOUR_CALM = 11,
}

const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65535;
const DEFAULT_FRAME = 16384;
const SLAB_BYTES = 64 * 1024;
/** Bodies up to this size are copied into the slab; larger ones are written by reference. */
const COPY_LIMIT = 16 * 1024;
/** A stream's write() reports backpressure once this many bytes wait for its flow-control window. */
export const STREAM_HWM = 64 * 1024;
/** ... or once this many bytes wait in the socket and our output buffer. */
const CONN_HWM = 1024 * 1024;
/** Reading from the socket pauses while more than this waits to be written. */
const READ_PAUSE_BYTES = 8 * 1024 * 1024;

export interface ConnOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (REFUSED_STREAM beyond). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE we advertise (per-stream receive window). */
  initialWindow: number;
  /** Connection-level receive window (WINDOW_UPDATE on stream 0 after the preface). */
  connWindow: number;
  /** SETTINGS_MAX_FRAME_SIZE we advertise and enforce. */
  maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we advertise; also the cap on one compressed header block. */
  maxHeaderListSize: number;
  /** Queued output over this drops the connection (ENHANCE_YOUR_CALM). */
  maxBufferedBytes: number;
}

/** What the connection reports to, and how it asks for a flush. */
export interface StreamHost {
  /** A stream object for a new request (the host may subclass H2Stream). */
  newStream(conn: H2Connection, id: number): H2Stream;
  /** The request headers are complete (fields is reused after the call returns). */
  onRequest(st: H2Stream, fields: HeaderList): void;
  /** Request body bytes (padding removed), in order. */
  onData(st: H2Stream, data: Buffer): void;
  /** The client half-closed (END_STREAM), after its last onData. */
  onRemoteEnd(st: H2Stream): void;
  /** The client reset the stream or the connection went away while the stream was open. */
  onAbort(st: H2Stream): void;
  /** A stream that waitDrain() was called for has room again. */
  onWritable(st: H2Stream): void;
  /** The connection has output: call conn.flush() soon (once per event-loop turn). */
  needFlush(conn: H2Connection): void;
  /** The socket closed; the connection is done. */
  onClose(conn: H2Connection): void;
  /** A protocol error ended the connection (for logging). */
  onProtocolError?(conn: H2Connection, code: H2Code, message: string): void;
}

/** A connection-level protocol error: GOAWAY with code, then close. */
class ConnectionError extends Error {
  constructor(readonly code: H2Code, message: string) { super(message); }
}

export class H2Stream {
  /** Bytes we may still send (peer's window for this stream). */
  sendWindow = DEFAULT_WINDOW;
  /** Bytes the peer may still send us before our next WINDOW_UPDATE. */
  recvAvail = 0;
  /** Bytes received (and consumed) not yet given back with WINDOW_UPDATE. */
  recvUnacked = 0;
  /** END_STREAM received. */
  remoteClosed = false;
  /** Our side is finished: END_STREAM written or queued behind pending DATA. */
  localClosed = false;
  /** END_STREAM actually written. */
  endSent = false;
  /** Gone from the connection: both sides closed, or reset. */
  closed = false;
  /** Inbound DATA is held back (and not credited) while paused. */
  paused = false;
  /** DATA that arrived while paused; a zero-length entry marks END_STREAM. */
  held: Buffer[] | null = null;
  /** Outbound DATA bytes waiting for flow-control window, in order. */
  pend: Buffer[] | null = null;
  pendBytes = 0;
  /** Trailers to send after pend drains (END_STREAM). */
  pendTrailers: Buffer | null = null;
  /** In the connection's blocked list. */
  blocked = false;
  /** In the connection's drain-waiter list. */
  waitingDrain = false;

  constructor(readonly conn: H2Connection, readonly id: number) {}
}

function frameHeader(b: Buffer, off: number, len: number, type: number, flags: number, id: number): void {
  b[off] = len >>> 16;
  b[off + 1] = (len >>> 8) & 0xff;
  b[off + 2] = len & 0xff;
  b[off + 3] = type;
  b[off + 4] = flags;
  b.writeUInt32BE(id, off + 5);
}

export class H2Connection {
  readonly streams = new Map<number, H2Stream>();
  /** Highest client stream id seen. */
  lastStreamId = 0;
  /** GOAWAY sent: no new streams; the socket ends once the open ones finish. */
  goingAway = false;
  /** The socket is finished with (error, GOAWAY after a protocol error, or closed). */
  dead = false;
  /** In the host's flush list. */
  dirty = false;

  private prefaceLeft = PREFACE.length;
  private gotSettings = false;
  private partial: Buffer | null = null;
  private readonly hpack: HpackDecoder;
  private readonly fields = new HeaderList();
  private hbParts: Buffer[] | null = null;
  private hbStream = 0;
  private hbEnd = false;
  private hbBytes = 0;

  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = DEFAULT_FRAME;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvAvail: number;
  private connUnacked = 0;
  private readonly blockedList: H2Stream[] = [];
  private readonly drainList: H2Stream[] = [];
  /** Streams we ended while the client had not half-closed: RST_STREAM(NO_ERROR) at flush if still so. */
  private readonly rstPending: H2Stream[] = [];

  private slab: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  private slabStart = 0;
  private slabPos = 0;
  private readonly out: Buffer[] = [];
  private outBytes = 0;
  private readPaused = false;
  private endWhenFlushed = false;

  constructor(readonly socket: Socket, private readonly host: StreamHost, private readonly opts: ConnOptions) {
    this.hpack = new HpackDecoder(4096);
    this.connRecvAvail = opts.connWindow;
    this.writeSettings();
  }

  // ------------------------------------------------------------ input

  /** Feeds bytes read from the socket. Never throws: a protocol error ends this connection only. */
  onBytes(chunk: Buffer): void {
    if (this.dead) return;
    try {
      this.parse(chunk);
    } catch (err) {
      if (err instanceof ConnectionError) this.fail(err.code, err.message);
      else if (err instanceof HpackError) this.fail(H2Code.COMPRESSION_ERROR, err.message);
      else this.fail(H2Code.INTERNAL_ERROR, err instanceof Error ? err.message : String(err));
    }
  }

  private parse(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    if (this.prefaceLeft > 0) {
      const start = PREFACE.length - this.prefaceLeft;
      const take = Math.min(this.prefaceLeft, n);
      for (let i = 0; i < take; i++) {
        if (chunk[i] !== PREFACE[start + i]) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'bad connection preface');
      }
      this.prefaceLeft -= take;
      off = take;
      if (this.prefaceLeft > 0) return;
    }
    if (this.partial !== null) {
      // Complete the frame split across reads, copying only its own bytes.
      let p = this.partial;
      if (p.length < 9) {
        const need = Math.min(9 - p.length, n - off);
        p = Buffer.concat([p, chunk.subarray(off, off + need)]);
        off += need;
        if (p.length < 9) { this.partial = p; return; }
      }
      const len = this.frameLength(p, 0);
      const need = 9 + len - p.length;
      if (n - off < need) { this.partial = Buffer.concat([p, chunk.subarray(off)]); return; }
      const whole = need === 0 ? p : Buffer.concat([p, chunk.subarray(off, off + need)]);
      off += need;
      this.partial = null;
      this.frame(whole, 0, len);
      if (this.dead) return;
    }
    while (n - off >= 9) {
      const len = this.frameLength(chunk, off);
      if (n - off < 9 + len) break;
      this.frame(chunk, off, len);
      if (this.dead) return;
      off += 9 + len;
    }
    if (off < n) this.partial = chunk.subarray(off);
  }

  private frameLength(b: Buffer, off: number): number {
    const len = (b[off]! << 16) | (b[off + 1]! << 8) | b[off + 2]!;
    if (len > this.opts.maxFrameSize) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, `frame of ${len} bytes`);
    return len;
  }

  private frame(b: Buffer, off: number, len: number): void {
    const type = b[off + 3]!;
    const flags = b[off + 4]!;
    const id = b.readUInt32BE(off + 5) & 0x7fffffff;
    const p = off + 9;
    if (!this.gotSettings) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'first frame is not SETTINGS');
      }
      this.gotSettings = true;
    }
    if (this.hbParts !== null && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'expected CONTINUATION');
    }
    switch (type) {
      case FrameType.DATA: this.onDataFrame(b, p, len, flags, id); return;
      case FrameType.HEADERS: this.onHeadersFrame(b, p, len, flags, id); return;
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (len !== 5) this.resetId(id, H2Code.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM: this.onRstFrame(len, id); return;
      case FrameType.SETTINGS: this.onSettingsFrame(b, p, len, flags, id); return;
      case FrameType.PUSH_PROMISE: throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING:
        if (len !== 8) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'PING length');
        if (id !== 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'PING on a stream');
        if ((flags & Flag.ACK) === 0) {
          const o = this.reserve(17);
          frameHeader(this.slab, o, 8, FrameType.PING, Flag.ACK, 0);
          b.copy(this.slab, o + 9, p, p + 8);
        }
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (len < 8) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'GOAWAY length');
        // The client opens no more streams; finish the open ones, then close.
        this.goingAway = true;
        if (this.streams.size === 0) this.endSoon();
        return;
      case FrameType.WINDOW_UPDATE: this.onWindowUpdate(b, p, len, id); return;
      case FrameType.CONTINUATION: this.onContinuation(b, p, len, flags, id); return;
      default:
        return;   // unknown frame types are ignored (RFC 9113 5.5)
    }
  }

  private onDataFrame(b: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'DATA on stream 0');
    this.connRecvAvail -= len;
    if (this.connRecvAvail < 0) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, 'connection window exceeded');
    // The connection window is given back as DATA arrives; streams are bounded by their own windows.
    this.connUnacked += len;
    if (this.connUnacked >= this.opts.connWindow >>> 1) {
      this.writeWindowUpdate(0, this.connUnacked);
      this.connRecvAvail += this.connUnacked;
      this.connUnacked = 0;
    }
    let start = p;
    let end = p + len;
    if (flags & Flag.PADDED) {
      if (len < 1) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'padded DATA without a pad length');
      const pad = b[p]!;
      if (pad >= len) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'DATA padding longer than the frame');
      start = p + 1;
      end -= pad;
    }
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return;   // a stream we closed or reset: ignore (RFC 9113 5.1)
    }
    if (st.remoteClosed) {
      this.resetStream(st, H2Code.STREAM_CLOSED);
      this.host.onAbort(st);
      return;
    }
    st.recvAvail -= len;
    if (st.recvAvail < 0) {
      this.resetStream(st, H2Code.FLOW_CONTROL_ERROR);
      this.host.onAbort(st);
      return;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (endStream) st.remoteClosed = true;
    st.recvUnacked += len;
    if (st.localClosed) {
      if (endStream && st.endSent) this.removeStream(st);
      return;
    }
    if (st.paused) {
      const h = (st.held ??= []);
      if (end > start) h.push(b.subarray(start, end));
      if (endStream) h.push(EMPTY);
      return;
    }
    if (end > start) this.host.onData(st, b.subarray(start, end));
    if (st.closed) return;
    if (endStream) {
      if (!st.localClosed) this.host.onRemoteEnd(st);
      else if (st.endSent) this.removeStream(st);
    } else {
      this.creditStream(st);
    }
  }

  private creditStream(st: H2Stream): void {
    if (st.paused || st.remoteClosed || st.closed || st.recvUnacked < this.opts.initialWindow >>> 1) return;
    this.writeWindowUpdate(st.id, st.recvUnacked);
    st.recvAvail += st.recvUnacked;
    st.recvUnacked = 0;
  }

  private onHeadersFrame(b: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id === 0 || (id & 1) === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `HEADERS on stream ${id}`);
    let start = p;
    let end = p + len;
    if (flags & Flag.PADDED) {
      if (len < 1) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'padded HEADERS without a pad length');
      const pad = b[p]!;
      start++;
      end -= pad;
    }
    if (flags & Flag.PRIORITY) start += 5;
    if (start > end) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) { this.onHeaderBlock(id, b, start, end, endStream); return; }
    if (end - start > this.opts.maxHeaderListSize) throw new ConnectionError(H2Code.ENHANCE_YOUR_CALM, 'header block too large');
    this.hbParts = [b.subarray(start, end)];
    this.hbBytes = end - start;
    this.hbStream = id;
    this.hbEnd = endStream;
  }

  private onContinuation(b: Buffer, p: number, len: number, flags: number, id: number): void {
    const parts = this.hbParts;
    if (parts === null || id !== this.hbStream) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    this.hbBytes += len;
    if (this.hbBytes > this.opts.maxHeaderListSize) throw new ConnectionError(H2Code.ENHANCE_YOUR_CALM, 'header block too large');
    parts.push(b.subarray(p, p + len));
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.hbParts = null;
    const block = Buffer.concat(parts);
    this.onHeaderBlock(id, block, 0, block.length, this.hbEnd);
  }

  private onHeaderBlock(id: number, b: Buffer, start: number, end: number, endStream: boolean): void {
    const fields = this.fields;
    fields.reset();
    // Decode even when the stream is gone: the HPACK table must stay in step.
    this.hpack.decode(b, start, end, fields);
    const existing = this.streams.get(id);
    if (existing !== undefined) {
      // Trailers from the client (gRPC clients send none, but HTTP/2 allows them).
      if (!endStream) { this.resetStream(existing, H2Code.PROTOCOL_ERROR); this.host.onAbort(existing); return; }
      if (existing.remoteClosed) { this.resetStream(existing, H2Code.STREAM_CLOSED); this.host.onAbort(existing); return; }
      existing.remoteClosed = true;
      if (existing.localClosed) { if (existing.endSent) this.removeStream(existing); return; }
      if (existing.paused) { (existing.held ??= []).push(EMPTY); return; }
      this.host.onRemoteEnd(existing);
      return;
    }
    if (id <= this.lastStreamId) return;   // a stream already closed (RFC 9113: STREAM_CLOSED; we are lenient)
    this.lastStreamId = id;
    if (this.goingAway || this.streams.size >= this.opts.maxConcurrentStreams) {
      this.resetId(id, H2Code.REFUSED_STREAM);
      return;
    }
    if (fields.size > this.opts.maxHeaderListSize) {
      this.resetId(id, H2Code.PROTOCOL_ERROR);
      return;
    }
    const st = this.host.newStream(this, id);
    st.sendWindow = this.peerInitialWindow;
    st.recvAvail = this.opts.initialWindow;
    this.streams.set(id, st);
    if (endStream) st.remoteClosed = true;
    this.host.onRequest(st, fields);
    if (endStream && !st.closed && !st.localClosed) this.host.onRemoteEnd(st);
  }

  private onRstFrame(len: number, id: number): void {
    if (len !== 4) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'RST_STREAM length');
    if (id === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
      return;
    }
    const wasLocalClosed = st.localClosed;
    this.removeStream(st);
    if (!wasLocalClosed) this.host.onAbort(st);
  }

  private onSettingsFrame(b: Buffer, p: number, len: number, flags: number, id: number): void {
    if (id !== 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (len !== 0) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (len % 6 !== 0) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'SETTINGS length');
    let grew = false;
    for (let o = p; o < p + len; o += 6) {
      const k = b.readUInt16BE(o);
      const v = b.readUInt32BE(o + 2);
      switch (k) {
        case 2:   // ENABLE_PUSH
          if (v > 1) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'ENABLE_PUSH not 0 or 1');
          break;
        case 4: { // INITIAL_WINDOW_SIZE
          if (v > MAX_WINDOW) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          if (delta !== 0) {
            for (const st of this.streams.values()) {
              st.sendWindow += delta;
              if (st.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, 'stream window overflow');
            }
            if (delta > 0) grew = true;
          }
          break;
        }
        case 5:   // MAX_FRAME_SIZE
          if (v < DEFAULT_FRAME || v > 0xffffff) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
          this.peerMaxFrame = v;
          break;
        default:
          // HEADER_TABLE_SIZE: we never index, so any size fits; MAX_CONCURRENT_STREAMS: we push nothing;
          // MAX_HEADER_LIST_SIZE: our blocks are small; unknown: ignored.
          break;
      }
    }
    const o = this.reserve(9);
    frameHeader(this.slab, o, 0, FrameType.SETTINGS, Flag.ACK, 0);
    if (grew) this.unblock();
  }

  private onWindowUpdate(b: Buffer, p: number, len: number, id: number): void {
    if (len !== 4) throw new ConnectionError(H2Code.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length');
    const inc = b.readUInt32BE(p) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(H2Code.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(H2Code.FLOW_CONTROL_ERROR, 'connection window overflow');
      this.unblock();
      return;
    }
    const st = this.streams.get(id);
    if (st === undefined) {
      if (id > this.lastStreamId) throw new ConnectionError(H2Code.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${id}`);
      return;
    }
    if (inc === 0) { this.resetStream(st, H2Code.PROTOCOL_ERROR); this.host.onAbort(st); return; }
    st.sendWindow += inc;
    if (st.sendWindow > MAX_WINDOW) { this.resetStream(st, H2Code.FLOW_CONTROL_ERROR); this.host.onAbort(st); return; }
    if (st.pendBytes > 0 || st.pendTrailers !== null) {
      this.drainStream(st);
      this.notifyDrain();
    }
  }

  // ------------------------------------------------------------ inbound backpressure

  /** Stops delivering this stream's DATA and stops crediting its window. */
  pauseStream(st: H2Stream): void {
    st.paused = true;
  }

  /** Delivers what was held back, then credits the window again. */
  resumeStream(st: H2Stream): void {
    if (!st.paused) return;
    st.paused = false;
    const held = st.held;
    while (held !== null && held.length > 0 && !st.paused && !st.closed) {
      const d = held.shift()!;
      if (d.length > 0) { this.host.onData(st, d); continue; }
      if (!st.localClosed) this.host.onRemoteEnd(st);
      else if (st.endSent) this.removeStream(st);
    }
    if (held !== null && held.length === 0) st.held = null;
    this.creditStream(st);
  }

  // ------------------------------------------------------------ output

  /** Room for n bytes in the slab; returns the offset (write into this.slab). */
  private reserve(n: number): number {
    if (this.slabPos + n > this.slab.length) {
      this.closeSegment();
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, n));
      this.slabStart = 0;
      this.slabPos = 0;
    }
    const off = this.slabPos;
    this.slabPos += n;
    this.outBytes += n;
    if (!this.dirty) this.host.needFlush(this);
    return off;
  }

  private closeSegment(): void {
    if (this.slabPos > this.slabStart) {
      this.out.push(this.slab.subarray(this.slabStart, this.slabPos));
      this.slabStart = this.slabPos;
    }
  }

  private pushRef(b: Buffer): void {
    this.closeSegment();
    this.out.push(b);
    this.outBytes += b.length;
    if (!this.dirty) this.host.needFlush(this);
  }

  private writeSettings(): void {
    const o = this.opts;
    const settings: [number, number][] = [
      [3, Math.min(o.maxConcurrentStreams, 0xffffffff)], [4, o.initialWindow], [6, o.maxHeaderListSize],
    ];
    if (o.maxFrameSize !== DEFAULT_FRAME) settings.push([5, o.maxFrameSize]);
    const off = this.reserve(9 + 6 * settings.length);
    const s = this.slab;
    frameHeader(s, off, 6 * settings.length, FrameType.SETTINGS, 0, 0);
    settings.forEach(([k, v], i) => { s.writeUInt16BE(k, off + 9 + 6 * i); s.writeUInt32BE(v >>> 0, off + 11 + 6 * i); });
    if (o.connWindow > DEFAULT_WINDOW) this.writeWindowUpdate(0, o.connWindow - DEFAULT_WINDOW);
  }

  private writeWindowUpdate(id: number, inc: number): void {
    const o = this.reserve(13);
    frameHeader(this.slab, o, 4, FrameType.WINDOW_UPDATE, 0, id);
    this.slab.writeUInt32BE(inc, o + 9);
  }

  private writeRst(id: number, code: H2Code): void {
    const o = this.reserve(13);
    frameHeader(this.slab, o, 4, FrameType.RST_STREAM, 0, id);
    this.slab.writeUInt32BE(code, o + 9);
  }

  private writeGoaway(code: H2Code, debug: string): void {
    const d = Buffer.from(debug.slice(0, 256), 'utf8');
    const o = this.reserve(17 + d.length);
    frameHeader(this.slab, o, 8 + d.length, FrameType.GOAWAY, 0, 0);
    this.slab.writeUInt32BE(this.lastStreamId, o + 9);
    this.slab.writeUInt32BE(code, o + 13);
    d.copy(this.slab, o + 17);
  }

  /** HEADERS (+ CONTINUATION when the block exceeds the peer's frame size). */
  private writeHeaderFrames(id: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrame;
    const es = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      const o = this.reserve(9 + block.length);
      frameHeader(this.slab, o, block.length, FrameType.HEADERS, Flag.END_HEADERS | es, id);
      block.copy(this.slab, o + 9);
      return;
    }
    for (let off = 0; off < block.length; off += max) {
      const n = Math.min(max, block.length - off);
      const last = off + n === block.length;
      const o = this.reserve(9 + n);
      frameHeader(this.slab, o, n, off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION,
        (last ? Flag.END_HEADERS : 0) | (off === 0 ? es : 0), id);
      block.copy(this.slab, o + 9, off, off + n);
    }
  }

  /** Response HEADERS, or trailers when endStream (queued behind DATA still waiting for window). */
  writeHeaders(st: H2Stream, block: Buffer, endStream: boolean): void {
    if (st.closed || st.localClosed || this.dead) return;
    if (endStream) {
      st.localClosed = true;
      if (st.pendBytes > 0) { st.pendTrailers = block; return; }
    }
    this.writeHeaderFrames(st.id, block, endStream);
    if (endStream) this.endedLocally(st);
  }

  /** One gRPC message (5-byte prefix + body) as DATA, within the flow-control windows; the rest is queued. */
  writeMessage(st: H2Stream, body: Uint8Array): void {
    if (st.closed || st.localClosed || this.dead) return;
    const n = 5 + body.length;
    if (st.pendBytes === 0 && body.length <= COPY_LIMIT && n <= this.peerMaxFrame &&
        n <= this.connSendWindow && n <= st.sendWindow) {
      const o = this.reserve(9 + n);
      const s = this.slab;
      frameHeader(s, o, n, FrameType.DATA, 0, st.id);
      s[o + 9] = 0;
      s.writeUInt32BE(body.length, o + 10);
      s.set(body, o + 14);
      this.connSendWindow -= n;
      st.sendWindow -= n;
      return;
    }
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.length, 1);
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const pend = (st.pend ??= []);
    pend.push(prefix);
    if (b.length > 0) pend.push(b);
    st.pendBytes += n;
    this.drainStream(st);
  }

  /**
   * A whole unary response: HEADERS + DATA + trailers. When the windows allow
   * and the body is small, the three frames go into the slab together.
   */
  writeUnary(st: H2Stream, headers: Buffer, body: Uint8Array, trailers: Buffer): void {
    if (st.closed || st.localClosed || this.dead) return;
    const n = 5 + body.length;
    if (body.length <= COPY_LIMIT && n <= this.peerMaxFrame && n <= this.connSendWindow && n <= st.sendWindow) {
      const o = this.reserve(27 + headers.length + n + trailers.length);
      const s = this.slab;
      const id = st.id;
      frameHeader(s, o, headers.length, FrameType.HEADERS, Flag.END_HEADERS, id);
      headers.copy(s, o + 9);
      let d = o + 9 + headers.length;
      frameHeader(s, d, n, FrameType.DATA, 0, id);
      s[d + 9] = 0;
      s.writeUInt32BE(body.length, d + 10);
      s.set(body, d + 14);
      d += 9 + n;
      frameHeader(s, d, trailers.length, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id);
      trailers.copy(s, d + 9);
      this.connSendWindow -= n;
      st.sendWindow -= n;
      st.localClosed = true;
      this.endedLocally(st);
      return;
    }
    this.writeHeaders(st, headers, false);
    this.writeMessage(st, body);
    this.writeHeaders(st, trailers, true);
  }

  /** Sends queued DATA as the windows allow; then the queued trailers. */
  private drainStream(st: H2Stream): void {
    const pend = st.pend;
    while (st.pendBytes > 0 && pend !== null) {
      const n = Math.min(st.pendBytes, this.peerMaxFrame, this.connSendWindow, st.sendWindow);
      if (n <= 0) {
        if (!st.blocked) { st.blocked = true; this.blockedList.push(st); }
        return;
      }
      const h = this.reserve(9);
      frameHeader(this.slab, h, n, FrameType.DATA, 0, st.id);
      let left = n;
      while (left > 0) {
        const b = pend[0]!;
        const take = Math.min(left, b.length);
        const part = take === b.length ? b : b.subarray(0, take);
        if (take <= 1024) {
          const o = this.reserve(take);
          part.copy(this.slab, o);
        } else {
          this.pushRef(part);
        }
        if (take === b.length) pend.shift();
        else pend[0] = b.subarray(take);
        left -= take;
      }
      st.pendBytes -= n;
      this.connSendWindow -= n;
      st.sendWindow -= n;
    }
    if (st.pendBytes === 0) st.pend = null;
    const t = st.pendTrailers;
    if (t !== null && st.pendBytes === 0) {
      st.pendTrailers = null;
      this.writeHeaderFrames(st.id, t, true);
      this.endedLocally(st);
    }
  }

  /** After a WINDOW_UPDATE or a SETTINGS that grew windows: resume blocked streams. */
  private unblock(): void {
    const list = this.blockedList;
    if (list.length > 0) {
      const n = list.length;
      for (let i = 0; i < n; i++) {
        const st = list[i]!;
        st.blocked = false;
        if (!st.closed) this.drainStream(st);
      }
      // drainStream re-added the ones still blocked at the end.
      list.splice(0, n);
    }
    this.notifyDrain();
  }

  /** True when a stream's writes should wait (backpressure). */
  backedUp(st: H2Stream): boolean {
    return st.pendBytes >= STREAM_HWM || this.outBytes + this.socket.writableLength >= CONN_HWM;
  }

  /** Calls host.onWritable(st) once st is no longer backed up. */
  waitDrain(st: H2Stream): void {
    if (!st.waitingDrain) { st.waitingDrain = true; this.drainList.push(st); }
  }

  private notifyDrain(): void {
    const list = this.drainList;
    if (list.length === 0) return;
    const n = list.length;
    let keep = 0;
    for (let i = 0; i < n; i++) {
      const st = list[i]!;
      if (st.closed) { st.waitingDrain = false; continue; }
      if (this.backedUp(st)) { list[keep++] = st; continue; }
      st.waitingDrain = false;
      this.host.onWritable(st);
    }
    // onWritable may have added waiters past n; keep them.
    list.splice(keep, n - keep);
  }

  /** We wrote END_STREAM: the stream is done once the client has half-closed too. */
  private endedLocally(st: H2Stream): void {
    st.endSent = true;
    if (st.remoteClosed) this.removeStream(st);
    else this.rstPending.push(st);
  }

  /** RST_STREAM for a stream we track. */
  resetStream(st: H2Stream, code: H2Code): void {
    if (st.closed) return;
    this.writeRst(st.id, code);
    this.removeStream(st);
  }

  private resetId(id: number, code: H2Code): void {
    const st = this.streams.get(id);
    if (st !== undefined) this.resetStream(st, code);
    else this.writeRst(id, code);
  }

  private removeStream(st: H2Stream): void {
    if (st.closed) return;
    st.closed = true;
    st.pend = null;
    st.pendBytes = 0;
    st.pendTrailers = null;
    st.held = null;
    this.streams.delete(st.id);
    if (this.goingAway && this.streams.size === 0) this.endSoon();
  }

  /** Writes everything produced since the last flush in one socket write (one writev when several pieces). */
  flush(): void {
    // dirty stays set while we write, so the frames written here do not ask for another flush.
    this.dirty = true;
    if (this.dead) { this.out.length = 0; this.dirty = false; return; }
    const rst = this.rstPending;
    if (rst.length > 0) {
      // grpc-go's rule: a client still sending after our status gets RST_STREAM(NO_ERROR).
      for (let i = 0; i < rst.length; i++) {
        const st = rst[i]!;
        if (!st.closed && !st.remoteClosed) this.resetStream(st, H2Code.NO_ERROR);
      }
      rst.length = 0;
    }
    this.closeSegment();
    const out = this.out;
    const n = out.length;
    this.dirty = false;
    if (n === 0) return;
    const s = this.socket;
    if (n === 1) {
      s.write(out[0]!);
    } else {
      s.cork();
      for (let i = 0; i < n; i++) s.write(out[i]!);
      s.uncork();
    }
    out.length = 0;
    this.outBytes = 0;
    // Unused slab space stays for the next turn; what was written is never touched again.
    if (this.slab.length - this.slabPos < 1024) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabStart = 0;
      this.slabPos = 0;
    }
    const queued = s.writableLength;
    if (queued > this.opts.maxBufferedBytes) {
      this.host.onProtocolError?.(this, H2Code.ENHANCE_YOUR_CALM, `${queued} bytes of output queued`);
      s.destroy();
      return;
    }
    if (queued > READ_PAUSE_BYTES && !this.readPaused) { this.readPaused = true; s.pause(); }
    if (this.endWhenFlushed) { this.dead = true; s.end(); return; }
    this.notifyDrain();
  }

  /** The socket's buffer emptied. */
  onSocketDrain(): void {
    if (this.readPaused) { this.readPaused = false; this.socket.resume(); }
    this.notifyDrain();
  }

  private endSoon(): void {
    this.endWhenFlushed = true;
    if (!this.dirty) this.host.needFlush(this);
  }

  /** Graceful close: GOAWAY(NO_ERROR); open streams finish, new ones are refused, then the socket ends. */
  shutdown(): void {
    if (this.dead || this.goingAway) return;
    this.goingAway = true;
    this.writeGoaway(H2Code.NO_ERROR, '');
    if (this.streams.size === 0) this.endSoon();
  }

  /** Connection error: GOAWAY with the code, flush, end. */
  fail(code: H2Code, message: string): void {
    if (this.dead) return;
    this.host.onProtocolError?.(this, code, message);
    this.goingAway = true;
    this.writeGoaway(code, message);
    this.endWhenFlushed = true;
    this.flush();
    this.dead = true;
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    timer.unref();
  }

  /** The socket closed: every open stream is aborted. */
  onSocketClose(): void {
    this.dead = true;
    this.out.length = 0;
    for (const st of this.streams.values()) {
      const wasLocalClosed = st.localClosed;
      st.closed = true;
      st.pend = null;
      st.held = null;
      if (!wasLocalClosed) this.host.onAbort(st);
    }
    this.streams.clear();
    this.host.onClose(this);
  }
}

const EMPTY = Buffer.alloc(0);
