// The raft peer transport: raft Messages between members over TCP.
//
// - One outbound TCP connection per peer (TCP_NODELAY), dialled by us and used only
//   to send our messages to that peer; the peer's messages to us arrive on the
//   connection it dials. So each sender->receiver pair has one ordered stream.
// - A connection starts with a handshake (src/transport/handshake.ts) carrying the
//   cluster ID, the sender's and the intended receiver's member IDs and the protocol
//   version; a peer from another cluster is refused and logged ("cluster ID mismatch").
// - send() never blocks and never throws for a peer's sake: messages go to a per-peer
//   queue bounded in bytes (src/transport/send-queue.ts; at the bound the oldest
//   non-snapshot messages are dropped and counted, as raft tolerates loss). Everything
//   queued in one event-loop turn goes out in one socket write per peer, encoded in
//   place (one sizing pass, one buffer, entry data copied once).
// - Dial failures and broken connections are retried with exponential backoff
//   (100 ms doubling to 5 s, +-20% jitter); success resets it, and so does the peer
//   dialling us (it is up again: we redial it at once). A connection that was up for a
//   second or more and drops is redialled at once, then backs off.
// - A dial refused (or closed before the peer answered our hello) while the peer has no
//   connection open to us is reported as the peer gone (onPeerGone): nothing serves its
//   peer port, so its process is down. Timeouts and TLS failures are not reported.
// - Messages to ourselves are looped back without TCP, in the next turn.
// - Frames (src/transport/frames.ts) are checksummed; a bad frame, message or
//   handshake closes that connection only.
//
// - https:// peer URLs (listening and dialling) go through the PeerSocketFactory given
//   (src/tls/peer-sockets.ts): it hands over sockets whose TLS handshake and
//   certificate checks passed; the protocol above is the same.
//
// Snapshot data is not carried here: MsgSnap has only the snapshot's metadata; the
// member streams the state machine separately.

import * as net from 'node:net';
import { parseMemberUrl } from '../common/member-url.js';
import { listenUnix } from '../common/unix-listen.js';
import { MessageType, type Message } from '../raft/types.js';
import { FrameReader, FRAME_HEADER_BYTES, DEFAULT_MAX_FRAME_BYTES, frame, sealFrame } from './frames.js';
import { decodeMessage, encodeMessageInto, messageSize, TransportDecodeError } from './message-codec.js';
import {
  decodeAck, decodeHello, encodeAck, encodeHello, HandshakeStatus, HANDSHAKE_STATUS_TEXT, PREFACE, PROTOCOL_VERSION,
} from './handshake.js';
import { SendQueue } from './send-queue.js';

/** What the transport logs through: pino's Logger fits. */
export interface TransportLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HostPort {
  host: string;
  port: number;
  /** https:// or unixs:// (TLS). */
  secure?: boolean;
  /** unix:// and unixs://: the socket path (etcd's URL host:port, literally). */
  path?: string;
}

/** Where a socket for addr listens or connects: the unix socket path, or host and port. */
export function socketTarget(addr: HostPort): { path: string } | { host: string; port: number } {
  return addr.path !== undefined ? { path: addr.path } : { host: addr.host, port: addr.port };
}

/** Makes the listening and dialled sockets; TLS plugs in here. */
export interface PeerSocketFactory {
  /** A server (not yet listening) calling onSocket with each connection ready to carry bytes. */
  createServer(secure: boolean, onSocket: (s: net.Socket) => void): net.Server;
  /** Dials addr; onReady runs once the socket may carry bytes (for TLS: handshake and checks passed). */
  dial(addr: HostPort, onReady: () => void): net.Socket;
}

/** Plain TCP only; an https:// URL is refused. */
export const PLAIN_SOCKETS: PeerSocketFactory = {
  createServer(secure, onSocket) {
    if (secure) throw new TypeError('https:// peer URL without peer TLS certificates');
    return net.createServer({ noDelay: true }, onSocket);
  },
  dial(addr, onReady) {
    if (addr.secure === true) throw new TypeError(`cannot dial https://${addr.host}:${addr.port} without peer TLS certificates`);
    const s = net.connect({ ...socketTarget(addr), noDelay: true });
    s.once('connect', onReady);
    return s;
  },
};

export interface PeerTransportOptions {
  selfId: bigint;
  clusterId: bigint;
  /** Addresses to accept peer connections on (port 0: any free port, see addresses()). */
  listen: HostPort[];
  /** Peer member ID -> peer URL (http://host:port). Our own ID, if present, is ignored. */
  peers: Map<bigint, string>;
  /** Called for every message received (and every message sent to ourselves), in order per sender. */
  onMessage: (m: Message) => void;
  /**
   * A connection that does not start with the raft preface (e.g. HTTP on the peer
   * port: /members, snapshots) is handed here with what was read of it; without
   * this option such a connection is closed.
   */
  onForeignConnection?: (socket: net.Socket, head: Buffer) => void;
  /** A peer refused us because we were removed from the cluster (etcd then stops the member). */
  onRemoved?: (by: bigint) => void;
  /** Called when the outbound connection to a peer comes up (true) or goes down (false). */
  onPeerStatus?: (id: bigint, connected: boolean) => void;
  /**
   * Called when there is evidence that a peer's process is gone: a dial to it was refused
   * (or closed before the peer answered our hello) and no connection from it is open.
   * A timeout is no such evidence (a slow or partitioned peer may be alive).
   */
  onPeerGone?: (id: bigint) => void;
  log?: TransportLog;
  /** How sockets are made (TLS). Default PLAIN_SOCKETS. */
  sockets?: PeerSocketFactory;
  /** Bound on each peer's outbound queue, in encoded bytes. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Largest frame sent or accepted. Default 64 MiB. */
  maxFrameBytes?: number;
  /** Largest single socket write a flush builds (at least one message). Default 4 MiB. */
  maxWriteBytes?: number;
  /** Reconnect backoff bounds. Default 100 ms .. 5 s. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A connection must complete its handshake within this. Default 5 s. */
  handshakeTimeoutMs?: number;
  /** Bound on inbound connections (handshaking or open). Default 1024. */
  maxInboundConnections?: number;
}

export interface PeerStats {
  id: bigint;
  url: string;
  connected: boolean;
  sentMessages: number;
  sentBytes: number;
  receivedMessages: number;
  receivedBytes: number;
  /** Messages to this peer dropped: queue bound, oversized, unencodable, or discarded on removal. */
  drops: number;
  queuedMessages: number;
  queuedBytes: number;
  /** Handshakes completed on the outbound connection. */
  connects: number;
}

export interface TransportStats {
  peers: PeerStats[];
  /** Received from members not (or no longer) in the peer map, by sender. */
  otherSenders: { id: bigint; receivedMessages: number; receivedBytes: number }[];
  /** All dropped outbound messages, including those to unknown members. */
  drops: number;
  /** Peers whose outbound connection has completed its handshake. */
  connectedPeers: bigint[];
  inboundConnections: number;
  loopbackMessages: number;
}

/**
 * Dial errors meaning nothing serves the peer's port (or it dropped us before answering):
 * the peer's process is down. Not timeouts, not TLS failures.
 */
const REFUSALS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

/** An outbound connection up this long that drops is redialled at once rather than after the backoff. */
const STABLE_CONNECTION_MS = 1000;

/** Limit on frames before a connection's handshake is done (hello and ack are a few dozen bytes). */
const HANDSHAKE_MAX_FRAME_BYTES = 1024;
const NOOP_LOG: TransportLog = { debug() {}, info() {}, warn() {}, error() {} };

interface Counts {
  messages: number;
  bytes: number;
}

/** Parses http://host:port or https://host:port; throws TypeError on anything else. */
export function parsePeerUrl(url: string): HostPort {
  return parseMemberUrl(url);
}

function hex(id: bigint): string {
  return id.toString(16);
}

export class PeerTransport {
  readonly selfId: bigint;
  readonly clusterId: bigint;
  readonly maxFrameBytes: number;
  readonly maxQueueBytes: number;
  readonly maxWriteBytes: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxInboundConnections: number;
  readonly log: TransportLog;
  /** @internal */
  readonly sockets: PeerSocketFactory;

  private readonly onMessage: (m: Message) => void;
  private readonly onPeerStatus: ((id: bigint, connected: boolean) => void) | undefined;
  private readonly onPeerGone: ((id: bigint) => void) | undefined;
  /** @internal */
  readonly onForeignConnection: ((socket: net.Socket, head: Buffer) => void) | undefined;
  private readonly onRemoved: ((by: bigint) => void) | undefined;
  private readonly listenAddrs: HostPort[];
  private readonly servers: net.Server[] = [];
  private readonly peers = new Map<bigint, OutboundPeer>();
  private readonly removed = new Set<bigint>();
  private readonly inbound = new Set<InboundConn>();
  /** The open (handshaken) inbound connection of each sender. */
  private readonly inboundBySender = new Map<bigint, InboundConn>();
  private readonly received = new Map<bigint, Counts>();
  /** Peers with queued messages waiting for the end-of-turn flush. */
  private readonly dirty = new Set<OutboundPeer>();
  private loopback: Message[] = [];
  private flushScheduled = false;
  private started = false;
  private stopped = false;
  private unknownDrops = 0;
  private loopbackCount = 0;

  constructor(opts: PeerTransportOptions) {
    this.selfId = opts.selfId;
    this.clusterId = opts.clusterId;
    this.onMessage = opts.onMessage;
    this.onPeerStatus = opts.onPeerStatus;
    this.onPeerGone = opts.onPeerGone;
    this.onForeignConnection = opts.onForeignConnection;
    this.onRemoved = opts.onRemoved;
    this.log = opts.log ?? NOOP_LOG;
    this.sockets = opts.sockets ?? PLAIN_SOCKETS;
    this.listenAddrs = opts.listen.map((a) => ({ ...a, secure: a.secure === true }));
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 * 1024 * 1024;
    this.maxWriteBytes = opts.maxWriteBytes ?? 4 * 1024 * 1024;
    this.backoffMinMs = opts.backoffMinMs ?? 100;
    this.backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 5000;
    this.maxInboundConnections = opts.maxInboundConnections ?? 1024;
    if (this.selfId === 0n) throw new RangeError('selfId must be non-zero');
    if (!(this.backoffMinMs > 0 && this.backoffMaxMs >= this.backoffMinMs)) throw new RangeError('need 0 < backoffMinMs <= backoffMaxMs');
    for (const [id, url] of opts.peers) if (id !== this.selfId) this.addPeer(id, url);
  }

  /** Listens on every address, then dials every peer. */
  async start(): Promise<void> {
    if (this.started) throw new Error('PeerTransport already started');
    if (this.stopped) throw new Error('PeerTransport stopped');
    this.started = true;
    try {
      for (const a of this.listenAddrs) {
        const srv = this.sockets.createServer(a.secure === true, (s) => this.acceptSocket(s));
        this.servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          const ready = () => {
            srv.off('error', reject);
            resolve();
          };
          if (a.path !== undefined) listenUnix(srv, a.path, ready);
          else srv.listen(a.port, a.host, ready);
        });
        srv.on('error', (err) => this.log.error({ err, addr: a }, 'raft peer listener error'));
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    for (const p of this.peers.values()) p.dial();
    if (this.dirty.size > 0 || this.loopback.length > 0) this.scheduleFlush();
  }

  /** The addresses actually listened on (ports resolved). */
  addresses(): HostPort[] {
    const out: HostPort[] = [];
    for (const s of this.servers) {
      const a = s.address();
      if (a !== null && typeof a === 'object') out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  /** Closes listeners and every connection; queued messages are discarded. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers.values()) p.close();
    for (const c of [...this.inbound]) c.destroy();
    this.loopback = [];
    this.dirty.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  /** Queues messages for their peers (and loops ours back). Never blocks, never throws for a peer's sake. */
  send(msgs: Message[]): void {
    if (this.stopped) return;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (m.to === this.selfId) {
        this.loopback.push(m);
        continue;
      }
      const p = this.peers.get(m.to);
      if (p === undefined) {
        this.unknownDrops++;
        this.log.debug({ to: hex(m.to), type: MessageType[m.type] }, 'raft message to an unknown peer dropped');
        continue;
      }
      p.enqueue(m);
      this.dirty.add(p);
    }
    this.scheduleFlush();
  }

  /** Adds a peer, or moves an existing one to a new URL (reconnecting). */
  addPeer(id: bigint, url: string): void {
    if (id === this.selfId) return;
    const addr = parsePeerUrl(url);
    this.removed.delete(id);
    const old = this.peers.get(id);
    if (old !== undefined) {
      if (old.url === url) return;
      old.setAddress(url, addr);
      return;
    }
    const p = new OutboundPeer(this, id, url, addr);
    this.peers.set(id, p);
    if (this.started && !this.stopped) p.dial();
  }

  /** Forgets a peer: closes its connections both ways and refuses it from now on. */
  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (p !== undefined) {
      this.peers.delete(id);
      this.dirty.delete(p);
      p.close();
      this.removedDrops += p.drops;
    }
    this.removed.add(id);
    this.inboundBySender.get(id)?.destroy();
  }

  /** Since when our connection to the peer has been up (Date.now() ms), 0 if it is down (etcd's ActiveSince). */
  activeSince(id: bigint): number {
    return this.peers.get(id)?.connectedSince ?? 0;
  }

  stats(): TransportStats {
    const peers: PeerStats[] = [];
    let drops = this.unknownDrops;
    const connectedPeers: bigint[] = [];
    for (const p of this.peers.values()) {
      const r = this.received.get(p.id);
      peers.push({
        id: p.id, url: p.url, connected: p.connected,
        sentMessages: p.sentMessages, sentBytes: p.sentBytes,
        receivedMessages: r?.messages ?? 0, receivedBytes: r?.bytes ?? 0,
        drops: p.drops, queuedMessages: p.queue.length, queuedBytes: p.queue.bytes, connects: p.connects,
      });
      drops += p.drops;
      if (p.connected) connectedPeers.push(p.id);
    }
    const otherSenders: TransportStats['otherSenders'] = [];
    for (const [id, r] of this.received) {
      if (!this.peers.has(id)) otherSenders.push({ id, receivedMessages: r.messages, receivedBytes: r.bytes });
    }
    return { peers, otherSenders, drops: drops + this.removedDrops, connectedPeers, inboundConnections: this.inbound.size, loopbackMessages: this.loopbackCount };
  }

  /**
   * Takes over an accepted socket (for a listener shared with other protocols).
   * `head` is what was already read from it (starting with the preface).
   */
  acceptSocket(socket: net.Socket, head?: Buffer): void {
    if (this.stopped || this.inbound.size >= this.maxInboundConnections) {
      if (!this.stopped) this.log.warn({ remote: socket.remoteAddress, limit: this.maxInboundConnections }, 'too many raft peer connections; refusing one');
      socket.destroy();
      return;
    }
    const c = new InboundConn(this, socket);
    this.inbound.add(c);
    if (head !== undefined && head.length > 0) c.onData(head);
  }

  // ---- internals shared with the connection classes ----

  /** @internal Messages dropped for peers since removed (kept in the total). */
  removedDrops = 0;

  /** @internal */
  isStopped(): boolean {
    return this.stopped;
  }

  /** @internal */
  peerStatus(id: bigint, connected: boolean): void {
    if (this.onPeerStatus === undefined) return;
    try {
      this.onPeerStatus(id, connected);
    } catch (err) {
      this.log.error({ err, peer: hex(id) }, 'onPeerStatus threw');
    }
  }

  /** @internal A dial to `id` was refused: reported as gone unless `id` still has a connection open to us. */
  dialRefused(id: bigint, code: string | undefined): void {
    if (this.onPeerGone === undefined || this.inboundBySender.has(id)) return;
    this.log.debug({ peer: hex(id), code: code ?? 'closed before the handshake answer' }, 'raft peer gone: its peer port refuses us and it has no connection to us');
    try {
      this.onPeerGone(id);
    } catch (err) {
      this.log.error({ err, peer: hex(id) }, 'onPeerGone threw');
    }
  }

  /** @internal */
  removedByPeer(by: bigint): void {
    try {
      this.onRemoved?.(by);
    } catch (err) {
      this.log.error({ err, peer: hex(by) }, 'onRemoved threw');
    }
  }

  /** @internal Decides an inbound hello. */
  admit(fromId: bigint, clusterId: bigint, version: number, toId: bigint): HandshakeStatus {
    if (version !== PROTOCOL_VERSION) return HandshakeStatus.UnsupportedVersion;
    if (clusterId !== this.clusterId) return HandshakeStatus.ClusterIdMismatch;
    if (toId !== this.selfId) return HandshakeStatus.WrongMember;
    if (this.removed.has(fromId)) return HandshakeStatus.RemovedMember;
    return HandshakeStatus.Ok;
  }

  /** @internal An inbound connection finished its handshake. */
  opened(c: InboundConn, from: bigint): void {
    const old = this.inboundBySender.get(from);
    this.inboundBySender.set(from, c);
    // A newer connection from the same sender replaces the old (the sender reconnected).
    if (old !== undefined && old !== c) old.destroy();
    // The sender is back (a restarted member dials us first): dial it now rather than
    // after our backoff, which grew while it was down and would drop our messages to
    // it (votes included) for seconds.
    this.peers.get(from)?.redialNow();
  }

  /** @internal */
  closed(c: InboundConn): void {
    this.inbound.delete(c);
    if (c.peerId === null || this.inboundBySender.get(c.peerId) !== c) return;
    this.inboundBySender.delete(c.peerId);
    // The peer's stream ended after our dial to it was refused (the two closes of a
    // killed peer come in either order): that refusal is the evidence now.
    const p = this.peers.get(c.peerId);
    if (p !== undefined && !p.connected && p.lastRefusal !== null && !this.stopped) this.dialRefused(c.peerId, p.lastRefusal);
  }

  /** @internal A message arrived from `from` (already checked to be from it and for us). */
  deliver(from: bigint, m: Message, bytes: number): void {
    let r = this.received.get(from);
    if (r === undefined) this.received.set(from, (r = { messages: 0, bytes: 0 }));
    r.messages++;
    r.bytes += bytes;
    this.callOnMessage(m);
  }

  /** @internal */
  scheduleFlush(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    for (const p of this.dirty) p.flush();
    this.dirty.clear();
    if (this.loopback.length > 0) {
      const msgs = this.loopback;
      this.loopback = [];
      this.loopbackCount += msgs.length;
      for (const m of msgs) this.callOnMessage(m);
    }
  }

  private callOnMessage(m: Message): void {
    try {
      this.onMessage(m);
    } catch (err) {
      this.log.error({ err, from: hex(m.from), type: MessageType[m.type] }, 'raft onMessage threw');
    }
  }
}

/** Our connection to one peer, its queue and its reconnect schedule. */
class OutboundPeer {
  readonly queue: SendQueue;
  sentMessages = 0;
  sentBytes = 0;
  drops = 0;
  connects = 0;
  connected = false;
  /** Date.now() when the current connection finished its handshake; 0 while down. */
  connectedSince = 0;

  private socket: net.Socket | null = null;
  private reader: FrameReader | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closedForGood = false;
  /** How our last finished dial was refused (its error code); null once a handshake succeeds. */
  lastRefusal: string | null = null;
  /** Marks the current dial as answered by the peer (its process is up). */
  private answered: () => void = () => undefined;
  /** Consecutive failed dials; only the first of a run is logged above debug. */
  private failures = 0;

  constructor(
    private readonly t: PeerTransport,
    readonly id: bigint,
    public url: string,
    private addr: HostPort,
  ) {
    this.queue = new SendQueue(t.maxQueueBytes);
  }

  enqueue(m: Message): void {
    // A peer that was connected and went away gets nothing queued (etcd's rafthttp
    // drops too): raft, told it is unreachable, probes and re-sends what it needs.
    // Before the first connection, messages wait (members start at different times).
    if (!this.connected && this.connects > 0) {
      this.drops++;
      return;
    }
    const size = messageSize(m);
    if (size > this.t.maxFrameBytes) {
      this.drops++;
      this.t.log.error({ peer: hex(this.id), type: MessageType[m.type], bytes: size, limit: this.t.maxFrameBytes }, 'raft message over the frame limit dropped');
      return;
    }
    const dropped = this.queue.push(m, size);
    if (dropped > 0) {
      if (this.drops === 0) this.t.log.warn({ peer: hex(this.id), queuedBytes: this.queue.bytes }, 'raft peer queue full: dropping oldest messages');
      this.drops += dropped;
    }
  }

  setAddress(url: string, addr: HostPort): void {
    this.url = url;
    this.addr = addr;
    this.answered(); // our own close is no refusal
    this.lastRefusal = null;
    if (this.socket !== null) this.socket.destroy(); // 'close' redials at the new address
    else if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.dial();
    }
  }

  dial(): void {
    if (this.closedForGood || this.t.isStopped() || this.socket !== null) return;
    this.timer = null;
    let s: net.Socket;
    try {
      s = this.t.sockets.dial(this.addr, () => {
        s.write(Buffer.concat([PREFACE, frame(encodeHello({
          version: PROTOCOL_VERSION, clusterId: this.t.clusterId, fromId: this.t.selfId, toId: this.id,
        }))]));
      });
    } catch (err) {
      this.t.log.error({ err, peer: hex(this.id), url: this.url }, 'cannot dial raft peer');
      return;
    }
    this.socket = s;
    s.setKeepAlive(true, 10_000);
    this.reader = new FrameReader((f) => this.onFrame(f), HANDSHAKE_MAX_FRAME_BYTES);
    // Whether this dial ended as a refusal (evidence the peer is down): set on a refusing
    // error, or on a close before any answer; cleared by an answer, a timeout or our own close.
    let refusal: { code: string | undefined } | null = { code: undefined };
    this.answered = () => { refusal = null; };
    const hsTimer = setTimeout(() => {
      refusal = null;
      if (!this.connected) s.destroy(new Error(`handshake with peer not done within ${this.t.handshakeTimeoutMs} ms`));
    }, this.t.handshakeTimeoutMs);
    hsTimer.unref();
    s.on('data', (chunk: Buffer) => {
      try {
        this.reader?.push(chunk);
      } catch (err) {
        this.t.log.warn({ err, peer: hex(this.id), url: this.url }, 'bad handshake answer from raft peer; closing');
        s.destroy();
      }
    });
    s.on('drain', () => this.flush());
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (refusal !== null) refusal = REFUSALS.has(err.code ?? '') ? { code: err.code } : null;
      this.failures++;
      const fields = { peer: hex(this.id), url: this.url, code: err.code, msg: err.message };
      if (this.failures === 1) this.t.log.warn(fields, 'raft peer connection failed');
      else this.t.log.debug(fields, 'raft peer connection failed again');
    });
    s.on('close', () => {
      clearTimeout(hsTimer);
      if (this.socket !== s) return;
      const refused = refusal;
      refusal = null;
      this.socket = null;
      this.reader = null;
      // A connection that was up a while and dropped is redialled at once (once: its
      // backoff starts from there), so a dead peer's refusal is known within a round trip.
      let redialAtOnce = false;
      if (this.connected) {
        redialAtOnce = Date.now() - this.connectedSince >= STABLE_CONNECTION_MS;
        this.connected = false;
        this.connectedSince = 0;
        this.t.log.info({ peer: hex(this.id), url: this.url }, 'raft peer disconnected');
        this.drops += this.queue.clear();
        this.t.peerStatus(this.id, false);
      }
      if (redialAtOnce && !this.closedForGood && !this.t.isStopped()) setImmediate(() => this.dial());
      else this.scheduleRedial();
      // Only the last dial counts: one that timed out or failed otherwise is no evidence.
      this.lastRefusal = refused === null ? null : refused.code ?? 'closed before the handshake answer';
      if (refused !== null && !this.closedForGood && !this.t.isStopped()) this.t.dialRefused(this.id, refused.code);
    });
  }

  private onFrame(f: Buffer): void {
    if (this.connected) throw new TransportDecodeError('unexpected frame after the handshake');
    this.answered();
    this.lastRefusal = null;
    const a = decodeAck(f);
    const s = this.socket!;
    if (a.status !== HandshakeStatus.Ok) {
      const why = HANDSHAKE_STATUS_TEXT[a.status] ?? `status ${a.status}`;
      this.t.log.warn({ peer: hex(this.id), url: this.url, localClusterId: hex(this.t.clusterId), remoteClusterId: hex(a.clusterId), remoteMemberId: hex(a.memberId) },
        `raft peer refused our connection: ${why}`);
      s.destroy();
      if (a.status === HandshakeStatus.RemovedMember) this.t.removedByPeer(this.id);
      return;
    }
    if (a.clusterId !== this.t.clusterId || a.memberId !== this.id) {
      const why = a.clusterId !== this.t.clusterId ? 'cluster ID mismatch' : 'member ID mismatch';
      this.t.log.warn({ peer: hex(this.id), url: this.url, localClusterId: hex(this.t.clusterId), remoteClusterId: hex(a.clusterId), remoteMemberId: hex(a.memberId) },
        `raft peer rejected: ${why}`);
      s.destroy();
      return;
    }
    this.connected = true;
    this.lastRefusal = null;
    this.connectedSince = Date.now();
    this.connects++;
    this.attempt = 0;
    this.failures = 0;
    this.t.log.info({ peer: hex(this.id), url: this.url }, 'raft peer connected');
    this.t.peerStatus(this.id, true);
    this.flush();
  }

  /** The peer is known to be up: a dial waiting out its backoff happens now, from a fresh backoff. */
  redialNow(): void {
    if (this.timer === null || this.socket !== null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.dial();
  }

  private scheduleRedial(): void {
    if (this.closedForGood || this.t.isStopped() || this.timer !== null) return;
    const base = Math.min(this.t.backoffMaxMs, this.t.backoffMinMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    const delay = Math.min(this.t.backoffMaxMs, Math.max(this.t.backoffMinMs, base * (0.8 + 0.4 * Math.random())));
    this.timer = setTimeout(() => this.dial(), delay);
    this.timer.unref();
  }

  /** Writes queued messages: one buffer per write, up to maxWriteBytes, until the socket pushes back. */
  flush(): void {
    const s = this.socket;
    if (!this.connected || s === null || s.destroyed) return;
    while (this.queue.length > 0 && !s.writableNeedDrain) {
      let total = 0;
      let n = 0;
      // Sizing pass over the queue head (sizes were computed at enqueue).
      const q = this.queue;
      const batch: Message[] = [];
      for (;;) {
        const size = q.peekSize();
        if (size < 0) break;
        if (n > 0 && total + FRAME_HEADER_BYTES + size > this.t.maxWriteBytes) break;
        total += FRAME_HEADER_BYTES + size;
        batch.push(q.shift()!);
        n++;
      }
      const buf = Buffer.allocUnsafe(total);
      let off = 0;
      let sent = 0;
      for (const m of batch) {
        try {
          const end = encodeMessageInto(m, buf, off + FRAME_HEADER_BYTES);
          off = sealFrame(buf, off, end - off - FRAME_HEADER_BYTES);
          sent++;
        } catch (err) {
          this.drops++;
          this.t.log.error({ err, peer: hex(this.id), type: MessageType[m.type] }, 'raft message cannot be encoded; dropped');
        }
      }
      this.sentMessages += sent;
      this.sentBytes += off;
      s.write(off === total ? buf : buf.subarray(0, off));
    }
  }

  /** Stops for good (peer removed or transport stopped): no redial, queue discarded. */
  close(): void {
    this.closedForGood = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.drops += this.queue.clear();
    if (this.connected) {
      this.connected = false;
      this.connectedSince = 0;
      this.t.peerStatus(this.id, false);
    }
    this.socket?.destroy();
    this.socket = null;
  }
}

/** A connection a peer dialled to send us its messages. */
class InboundConn {
  peerId: bigint | null = null;
  private prefaceSeen = 0;
  private readonly reader: FrameReader;
  private timer: NodeJS.Timeout | null;
  private dead = false;

  constructor(
    private readonly t: PeerTransport,
    private readonly socket: net.Socket,
  ) {
    // Until the handshake is done only a small frame (the hello) is accepted.
    this.reader = new FrameReader((f) => this.onFrame(f), HANDSHAKE_MAX_FRAME_BYTES);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.timer = setTimeout(() => {
      if (!this.dead) this.t.log.warn({ remote: socket.remoteAddress }, 'raft peer connection did not complete its handshake in time; closing');
      this.destroy();
    }, t.handshakeTimeoutMs);
    this.timer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.t.log.debug({ remote: socket.remoteAddress, peer: this.peerId === null ? null : hex(this.peerId), code: err.code }, 'raft inbound connection error');
    });
    socket.on('close', () => {
      this.dead = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.t.closed(this);
    });
  }

  onData(chunk: Buffer): void {
    if (this.dead) return;
    try {
      if (this.prefaceSeen < PREFACE.length) {
        const n = Math.min(PREFACE.length - this.prefaceSeen, chunk.length);
        if (!chunk.subarray(0, n).equals(PREFACE.subarray(this.prefaceSeen, this.prefaceSeen + n))) {
          if (this.prefaceSeen === 0 && this.t.onForeignConnection !== undefined) return this.handOver(chunk);
          throw new TransportDecodeError('connection does not start with the raft transport preface');
        }
        this.prefaceSeen += n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) return;
      }
      this.reader.push(chunk);
    } catch (err) {
      this.t.log.warn({ err, remote: this.socket.remoteAddress, peer: this.peerId === null ? null : hex(this.peerId) },
        'malformed data on raft peer connection; closing it');
      this.destroy();
    }
  }

  private onFrame(f: Buffer): void {
    if (this.dead) return;
    const from = this.peerId;
    if (from !== null) {
      const m = decodeMessage(f);
      if (m.from !== from || m.to !== this.t.selfId) {
        throw new TransportDecodeError(`message ${hex(m.from)}->${hex(m.to)} on the connection from ${hex(from)} to ${hex(this.t.selfId)}`);
      }
      this.t.deliver(from, m, f.length + FRAME_HEADER_BYTES);
      return;
    }
    const h = decodeHello(f);
    const status = this.t.admit(h.fromId, h.clusterId, h.version, h.toId);
    this.socket.write(frame(encodeAck({ version: PROTOCOL_VERSION, status, clusterId: this.t.clusterId, memberId: this.t.selfId })));
    if (status !== HandshakeStatus.Ok) {
      this.t.log.warn({
        remote: this.socket.remoteAddress, remoteMemberId: hex(h.fromId), remoteClusterId: hex(h.clusterId),
        localClusterId: hex(this.t.clusterId), wantedMemberId: hex(h.toId), version: h.version,
      }, `rejected raft peer connection: ${HANDSHAKE_STATUS_TEXT[status]}`);
      // Let the answer reach the dialer, then close; the handshake timer is the backstop.
      this.dead = true;
      this.socket.end();
      return;
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.peerId = h.fromId;
    this.reader.maxFrameBytes = this.t.maxFrameBytes;
    this.t.opened(this, h.fromId);
  }

  /** Not raft: another protocol on the shared peer port takes the socket. */
  private handOver(head: Buffer): void {
    this.dead = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('error');
    this.socket.removeAllListeners('close');
    this.t.closed(this);
    this.t.onForeignConnection!(this.socket, head);
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }
}
