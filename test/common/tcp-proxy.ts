// A TCP proxy in front of each member's peer port, for partition tests.
//
// etsd's peer connections carry raft messages one way: each member dials each
// peer to send (src/transport/peer-transport.ts), and a connection opens with
// the 8-byte preface "etsdraft" and one frame (u32 length | u32 crc32c |
// payload) holding the hello, whose fromId names the sender
// (src/transport/handshake.ts). Member i advertises its proxy's port as its
// peer URL and listens on its real port, so every connection INTO member i
// passes through proxy i, and the proxy learns the sender from the hello.
// That is enough to cut one direction: cut(a, b) drops the connections a
// dialled to b, so a's messages stop reaching b while b's still reach a.
//
// A cut link's live connections are destroyed, and new ones are refused
// (closed right after their hello) or, in 'blackhole' mode, held open and
// never answered, as a dead network would, until heal(). Every socket the
// proxy holds is destroyed on close().
//
// drop(a, b) is a one-way loss instead: the connections stay up and b's
// messages to a still flow, but the bytes carrying a's messages to b are read
// and discarded (live connections too, from the next chunk on). For etsd
// those are the bytes a dialled to b after its hello; for etcd, the response
// of a stream b opened to a (etcd's stream reader dials the sender) and the
// body of a pipeline or snapshot POST a sent to b.
//
// Real etcd members work too: their peer traffic is HTTP, and each stream,
// pipeline and snapshot request names its sender in an X-Server-From header,
// which the proxy reads from the first request head instead of a hello.
// Requests without it (etcd's probes) name no one, and etcd reuses those
// keep-alive connections for its pipeline messages; so while a member is
// isolated, every connection the proxy cannot name is cut too.

import * as net from 'node:net';
import { Transform } from 'node:stream';
import { computeMemberId } from '../../src/common/ids.js';
import { PREFACE, decodeHello } from '../../src/transport/handshake.js';
import { FRAME_HEADER_BYTES } from '../../src/transport/frames.js';

/** A hello frame is 28 bytes; anything much larger is not a hello. */
const MAX_HELLO_BYTES = 1024;
/** An HTTP request head longer than this is not one of etcd's peer requests. */
const MAX_HTTP_HEAD_BYTES = 16 * 1024;
/** A connection that has not sent its hello within this is closed. */
const HELLO_TIMEOUT_MS = 10_000;

export interface ProxiedMember {
  /** Where the proxy listens: the port in the member's advertised peer URL. */
  proxyPort: number;
  /** The member's real peer port (--listen-peer-urls). */
  targetPort: number;
}

export interface ProxyOptions {
  host?: string;
  /** --initial-cluster-token of the cluster (etcd's default 'etcd-cluster'); only used to name members by id. */
  clusterToken?: string;
  /** What a cut link does with a new connection: close it after the hello (default), or hold it open and silent. */
  mode?: 'refuse' | 'blackhole';
}

/**
 * One forwarded connection: dialer -> listener (member indexes; -1 for a dialer the proxy cannot name),
 * and which way raft messages flow on it: 'up' (dialer to listener), 'down' (listener to dialer) or none.
 */
interface Link { from: number; to: number; flow: 'up' | 'down' | null; client: net.Socket; upstream: net.Socket | null }

export interface ProxyStats {
  /** Connections forwarded, per "from>to". */
  forwarded: Record<string, number>;
  /** Connections refused or held because their link was cut, per "from>to". */
  dropped: Record<string, number>;
  /** Live connections destroyed by cut() / isolate(). */
  severed: number;
  /** Connections whose sender could not be named (passed through unless a member is isolated). */
  unidentified: number;
  /** Chunks discarded by drop(), per "sender>receiver" of the messages. */
  discarded: Record<string, number>;
}

export class PartitionProxy {
  /** Member ids, by index, as etsd computes them from the advertised (proxy) peer URLs. */
  readonly ids: bigint[];
  private readonly indexOfId = new Map<bigint, number>();
  private readonly servers: net.Server[] = [];
  private readonly cuts = new Set<string>();
  /** One-way message losses set by drop(): "sender>receiver". */
  private readonly drops = new Set<string>();
  /** Members cut off by isolate(): while any is, connections no one can be named for are cut as well. */
  private readonly isolated = new Set<number>();
  private readonly links = new Set<Link>();
  /** Connections that have not sent their hello yet. */
  private readonly pending = new Set<net.Socket>();
  /** Connections a cut link holds open and silent (blackhole mode). */
  private readonly held = new Set<net.Socket>();
  private readonly host: string;
  /** How cut links treat new connections (may be changed between cuts). */
  mode: 'refuse' | 'blackhole';
  private closed = false;
  readonly stats: ProxyStats = { forwarded: {}, dropped: {}, severed: 0, unidentified: 0, discarded: {} };

  private constructor(readonly members: ProxiedMember[], o: ProxyOptions) {
    this.host = o.host ?? '127.0.0.1';
    this.mode = o.mode ?? 'refuse';
    const token = o.clusterToken ?? 'etcd-cluster';
    this.ids = members.map((m) => computeMemberId([this.peerUrl(m.proxyPort)], token));
    this.ids.forEach((id, i) => this.indexOfId.set(id, i));
  }

  /** Starts one listener per member. */
  static async start(members: ProxiedMember[], o: ProxyOptions = {}): Promise<PartitionProxy> {
    const p = new PartitionProxy(members, o);
    try {
      for (let i = 0; i < members.length; i++) await p.listen(i);
    } catch (err) {
      await p.close();
      throw err;
    }
    return p;
  }

  private peerUrl(port: number): string { return `http://${this.host}:${port}`; }

  /** The URL member i advertises (and the others dial). */
  advertisedUrl(i: number): string { return this.peerUrl(this.members[i]!.proxyPort); }
  /** The URL member i listens on. */
  listenUrl(i: number): string { return this.peerUrl(this.members[i]!.targetPort); }

  /** Drops traffic from member a to member b (one direction). */
  cut(a: number, b: number): void {
    this.cuts.add(`${a}>${b}`);
    for (const l of [...this.links]) if (l.from === a && l.to === b) this.sever(l);
  }

  /** Cuts every link to and from member i. */
  isolate(i: number): void {
    this.isolated.add(i);
    for (const l of [...this.links]) if (l.from === -1) this.sever(l);
    for (let j = 0; j < this.members.length; j++) {
      if (j === i) continue;
      this.cut(i, j);
      this.cut(j, i);
    }
  }

  isCut(a: number, b: number): boolean { return this.cuts.has(`${a}>${b}`); }

  /** Discards member a's raft messages to member b, one direction only, connections kept open (until heal()). */
  drop(a: number, b: number): void { this.drops.add(`${a}>${b}`); }

  isDropped(a: number, b: number): boolean { return this.drops.has(`${a}>${b}`); }

  /** Member i now has this id (re-added under a new one by member add), so the proxy names its connections again. */
  setId(i: number, id: bigint): void {
    this.indexOfId.delete(this.ids[i]!);
    this.ids[i] = id;
    this.indexOfId.set(id, i);
  }

  /** Restores every link. Connections held by a blackhole are closed so their senders redial. */
  heal(): void {
    this.cuts.clear();
    this.drops.clear();
    this.isolated.clear();
    for (const s of [...this.held]) s.destroy();
    this.held.clear();
  }

  /** Number of live forwarded connections from a to b. */
  liveLinks(a: number, b: number): number {
    let n = 0;
    for (const l of this.links) if (l.from === a && l.to === b) n++;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const l of [...this.links]) this.sever(l, false);
    for (const s of [...this.pending, ...this.held]) s.destroy();
    this.pending.clear();
    this.held.clear();
    await Promise.all(this.servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }

  // ---- internals ----

  private listen(to: number): Promise<void> {
    const srv = net.createServer({ noDelay: true }, (s) => this.accept(s, to));
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.members[to]!.proxyPort, this.host, () => {
        srv.off('error', reject);
        srv.on('error', () => undefined);
        resolve();
      });
    });
  }

  private accept(client: net.Socket, to: number): void {
    if (this.closed) { client.destroy(); return; }
    client.on('error', () => undefined);
    this.pending.add(client);
    client.once('close', () => { this.pending.delete(client); this.held.delete(client); });
    const timer = setTimeout(() => client.destroy(), HELLO_TIMEOUT_MS);
    timer.unref();
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const head = identify(buf);
      if (head === 'more') return;
      client.off('data', onData);
      clearTimeout(timer);
      client.pause();
      this.pending.delete(client);
      if (head === 'other') this.stats.unidentified++;
      const from = head === 'other' ? -1 : this.indexOfId.get(head.fromId) ?? -1;
      if (from === -1 ? this.isolated.size > 0 : this.isCut(from, to)) {
        bump(this.stats.dropped, `${from}>${to}`);
        if (this.mode === 'refuse') { client.destroy(); return; }
        // Read and discard, never answer: the sender's handshake times out.
        this.held.add(client);
        client.on('data', () => undefined);
        client.resume();
        return;
      }
      this.forward({ from, to, flow: head === 'other' ? null : messageFlow(buf), client, upstream: null }, buf);
    };
    client.on('data', onData);
  }

  private forward(l: Link, head: Buffer): void {
    if (l.client.destroyed) return;
    bump(this.stats.forwarded, `${l.from}>${l.to}`);
    const up = net.connect({ host: this.host, port: this.members[l.to]!.targetPort, noDelay: true });
    l.upstream = up;
    this.links.add(l);
    up.on('error', () => undefined);
    const done = () => {
      this.links.delete(l);
      l.client.destroy();
      up.destroy();
    };
    up.once('close', done);
    l.client.once('close', done);
    up.write(head);
    // The first chunk (hello or request head) always passes; later ones in the messages' direction pass unless dropped.
    const [sender, receiver] = l.flow === 'down' ? [l.to, l.from] : [l.from, l.to];
    const gate = (dir: 'up' | 'down') => new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        if (l.flow === dir && this.isDropped(sender, receiver)) { bump(this.stats.discarded, `${sender}>${receiver}`); cb(); } else cb(null, chunk);
      },
    });
    l.client.pipe(gate('up')).pipe(up);
    up.pipe(gate('down')).pipe(l.client);
    l.client.resume();
  }

  private sever(l: Link, count = true): void {
    this.links.delete(l);
    if (count) this.stats.severed++;
    l.client.destroy();
    l.upstream?.destroy();
  }
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** etcd's rafthttp names the sender in a header of every stream, pipeline and snapshot request. */
const HTTP_METHODS = ['GET ', 'POST ', 'PUT '];
const SERVER_FROM = /\r\nX-Server-From: *([0-9a-fA-F]+)\r\n/i;

/** The sender of a raft connection from its first bytes: 'more' until the hello (or etcd's request head) is complete. */
function identify(buf: Buffer): { fromId: bigint } | 'more' | 'other' {
  const head = buf.subarray(0, 5).toString('latin1');
  for (const m of HTTP_METHODS) {
    if (head.startsWith(m)) return identifyHttp(buf);
    if (m.startsWith(head)) return 'more';
  }
  const n = Math.min(buf.length, PREFACE.length);
  if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return 'other';
  if (buf.length < PREFACE.length + FRAME_HEADER_BYTES) return 'more';
  const len = buf.readUInt32LE(PREFACE.length);
  if (len > MAX_HELLO_BYTES) return 'other';
  const start = PREFACE.length + FRAME_HEADER_BYTES;
  if (buf.length < start + len) return 'more';
  try {
    return { fromId: decodeHello(buf.subarray(start, start + len)).fromId };
  } catch {
    return 'other';
  }
}

/**
 * Which way raft messages flow on a named connection: etsd's dialer sends them; etcd's stream GET
 * receives them in its response (the listener sends), its pipeline and snapshot POSTs carry them up.
 */
function messageFlow(buf: Buffer): 'up' | 'down' | null {
  if (buf.subarray(0, PREFACE.length).equals(PREFACE)) return 'up';
  const line = buf.subarray(0, Math.max(0, buf.indexOf('\r\n', 0, 'latin1'))).toString('latin1');
  if (/^GET \/raft\/stream\//.test(line)) return 'down';
  if (/^POST \/raft(\/snapshot)?[ ?]/.test(line)) return 'up';
  return null;
}

/** Real etcd's peer requests: the X-Server-From header of the first request on the connection ('other' without one, as probes have). */
function identifyHttp(buf: Buffer): { fromId: bigint } | 'more' | 'other' {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return buf.length > MAX_HTTP_HEAD_BYTES ? 'other' : 'more';
  const m = SERVER_FROM.exec(buf.subarray(0, end + 2).toString('latin1'));
  return m ? { fromId: BigInt(`0x${m[1]}`) } : 'other';
}
