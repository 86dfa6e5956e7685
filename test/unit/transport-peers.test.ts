import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { MessageType, type Message } from '../../src/raft/types.js';
import { PeerTransport, parsePeerUrl, type TransportLog } from '../../src/transport/peer-transport.js';
import { frame } from '../../src/transport/frames.js';
import { encodeHello, PREFACE, PROTOCOL_VERSION } from '../../src/transport/handshake.js';
import { encodeMessage } from '../../src/transport/message-codec.js';
import type { Logger } from '../../src/common/log.js';

// pino's Logger must be usable as the transport's log.
const _logFits: (l: Logger) => TransportLog = (l) => l;
void _logFits;

const HOST = '127.0.0.1';

interface LogLine { level: string; obj: object; msg: string }

function captureLog(): TransportLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj, msg }); };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Node {
  t: PeerTransport;
  got: Message[];
  /** Peers reported gone (onPeerGone), in order. */
  gone: bigint[];
  log: ReturnType<typeof captureLog>;
  url: string;
}

async function startNode(id: bigint, opts: { clusterId?: bigint; port?: number; maxQueueBytes?: number; backoffMs?: number; handshakeTimeoutMs?: number } = {}): Promise<Node> {
  const got: Message[] = [];
  const gone: bigint[] = [];
  const log = captureLog();
  const t = new PeerTransport({
    selfId: id, clusterId: opts.clusterId ?? 0xc1n, listen: [{ host: HOST, port: opts.port ?? 0 }], peers: new Map(),
    onMessage: (m) => got.push(m), onPeerGone: (p) => gone.push(p), log, maxQueueBytes: opts.maxQueueBytes,
    backoffMinMs: opts.backoffMs, backoffMaxMs: opts.backoffMs, handshakeTimeoutMs: opts.handshakeTimeoutMs,
  });
  await t.start();
  return { t, got, gone, log, url: `http://${HOST}:${t.addresses()[0]!.port}` };
}

function connectAll(nodes: Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.t.addPeer(b.t.selfId, b.url);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function connected(n: Node, peers: bigint[]): boolean {
  const c = n.t.stats().connectedPeers;
  return peers.every((p) => c.includes(p));
}

function msg(from: bigint, to: bigint, seq: number, type = MessageType.MsgApp, dataBytes = 0): Message {
  return {
    type, from, to, term: 7, logTerm: 6, index: seq, commit: seq, reject: false, rejectHint: 0,
    entries: dataBytes > 0 ? [{ index: seq + 1, term: 7, data: Buffer.alloc(dataBytes, seq & 0xff) }] : [],
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, HOST, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function stopAll(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.t.stop()));
}

test('peers: parsePeerUrl', () => {
  assert.deepEqual(parsePeerUrl('http://127.0.0.1:2380'), { host: '127.0.0.1', port: 2380, secure: false });
  assert.deepEqual(parsePeerUrl('http://[::1]:2380'), { host: '::1', port: 2380, secure: false });
  assert.deepEqual(parsePeerUrl('https://a:1'), { host: 'a', port: 1, secure: true });
  // etcd's unix sockets: the URL's host:port is the socket path.
  assert.deepEqual(parsePeerUrl('unix://etcd.unix:1'), { host: 'etcd.unix', port: 1, secure: false, path: 'etcd.unix:1' });
  assert.deepEqual(parsePeerUrl('unixs://localhost:2'), { host: 'localhost', port: 2, secure: true, path: 'localhost:2' });
  assert.throws(() => parsePeerUrl('ftp://a:1'), TypeError);
  assert.throws(() => parsePeerUrl('nonsense'), TypeError);
});

test('peers: three transports, thousands of messages both ways, order kept per pair', async () => {
  const nodes = await Promise.all([1n, 2n, 3n].map((id) => startNode(id)));
  try {
    connectAll(nodes);
    for (const n of nodes) await waitFor(`node ${n.t.selfId} connected`, () => connected(n, nodes.filter((o) => o !== n).map((o) => o.t.selfId)));
    const PER_PAIR = 3000;
    const BATCH = 100;
    // Spread over many turns; some messages carry entries of a few KiB.
    for (let b = 0; b < PER_PAIR / BATCH; b++) {
      for (const n of nodes) {
        const out: Message[] = [];
        for (const o of nodes) {
          if (o === n) continue;
          for (let i = 0; i < BATCH; i++) {
            const seq = b * BATCH + i;
            out.push(msg(n.t.selfId, o.t.selfId, seq, seq % 10 === 0 ? MessageType.MsgApp : MessageType.MsgHeartbeat, seq % 10 === 0 ? 3000 : 0));
          }
        }
        n.t.send(out);
      }
      await new Promise((r) => setImmediate(r));
    }
    for (const n of nodes) await waitFor(`node ${n.t.selfId} got everything`, () => n.got.length === PER_PAIR * 2);
    for (const n of nodes) {
      const next = new Map<bigint, number>();
      for (const m of n.got) {
        assert.equal(m.to, n.t.selfId);
        const want = next.get(m.from) ?? 0;
        assert.equal(m.index, want, `order ${m.from}->${n.t.selfId}`);
        if (want % 10 === 0) assert.equal(m.entries[0]!.data.length, 3000);
        next.set(m.from, want + 1);
      }
    }
    // Stats agree on both ends of every pair.
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        const sa = a.t.stats().peers.find((p) => p.id === b.t.selfId)!;
        const sb = b.t.stats().peers.find((p) => p.id === a.t.selfId)!;
        assert.equal(sa.sentMessages, PER_PAIR);
        assert.equal(sb.receivedMessages, PER_PAIR);
        assert.equal(sa.sentBytes, sb.receivedBytes);
        assert.equal(sa.drops, 0);
      }
      assert.equal(a.t.stats().drops, 0);
    }
    // Messages to self come back without TCP, in the next turn, in order.
    const n1 = nodes[0]!;
    n1.got.length = 0;
    n1.t.send([msg(1n, 1n, 1), msg(1n, 1n, 2)]);
    assert.equal(n1.got.length, 0);
    await waitFor('loopback', () => n1.got.length === 2);
    assert.deepEqual(n1.got.map((m) => m.index), [1, 2]);
    assert.equal(n1.t.stats().loopbackMessages, 2);
  } finally {
    await stopAll(nodes);
  }
});

test('peers: a restarted peer on the same port is reconnected automatically', async () => {
  const a = await startNode(1n);
  let b = await startNode(2n);
  const port = b.t.addresses()[0]!.port;
  try {
    connectAll([a, b]);
    await waitFor('a->b', () => connected(a, [2n]));
    a.t.send([msg(1n, 2n, 0)]);
    await waitFor('first message', () => b.got.length === 1);
    await b.t.stop();
    await waitFor('a sees b down', () => !connected(a, [2n]));
    b = await startNode(2n, { port });
    b.t.addPeer(1n, a.url);
    await waitFor('a->b again', () => connected(a, [2n]));
    await waitFor('b->a', () => connected(b, [1n]));
    assert.equal(a.t.stats().peers[0]!.connects, 2);
    a.t.send([msg(1n, 2n, 1)]);
    b.t.send([msg(2n, 1n, 5)]);
    await waitFor('after restart', () => b.got.length === 1 && a.got.length === 1);
    assert.equal(b.got[0]!.index, 1);
    assert.equal(a.got[0]!.index, 5);
  } finally {
    await stopAll([a, b]);
  }
});

test('peers: a restarted peer that dials us is redialled at once, not after our backoff', async () => {
  // a's backoff is a minute: only b dialling in can bring a's connection to b back within the test.
  const a = await startNode(1n, { backoffMs: 60_000 });
  let b = await startNode(2n);
  const port = b.t.addresses()[0]!.port;
  try {
    connectAll([a, b]);
    await waitFor('a->b', () => connected(a, [2n]));
    await b.t.stop();
    await waitFor('a sees b down', () => !connected(a, [2n]));
    b = await startNode(2n, { port });
    b.t.addPeer(1n, a.url);
    await waitFor('b->a', () => connected(b, [1n]));
    await waitFor('a->b again, long before its backoff', () => connected(a, [2n]));
    a.t.send([msg(1n, 2n, 3, MessageType.MsgVoteResp)]);
    await waitFor('a vote answer reaches the restarted peer', () => b.got.length === 1);
    assert.equal(b.got[0]!.type, MessageType.MsgVoteResp);
  } finally {
    await stopAll([a, b]);
  }
});

test('peers: a member of another cluster is refused both ways and logged', async () => {
  const a = await startNode(1n, { clusterId: 0xaaaan });
  const c = await startNode(3n, { clusterId: 0xbbbbn });
  try {
    connectAll([a, c]);
    a.t.send([msg(1n, 3n, 0)]);
    c.t.send([msg(3n, 1n, 0)]);
    const mismatch = (n: Node) => n.log.lines.filter((l) => l.level === 'warn' && l.msg.includes('cluster ID mismatch'));
    // Each side logs it as the listener (rejected) and as the dialer (refused).
    await waitFor('mismatch logged', () => mismatch(a).length >= 2 && mismatch(c).length >= 2);
    assert.ok(mismatch(a).some((l) => l.msg.startsWith('rejected raft peer connection')));
    assert.ok(mismatch(a).some((l) => l.msg.startsWith('raft peer refused our connection')));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(a.t.stats().connectedPeers, []);
    assert.deepEqual(c.t.stats().connectedPeers, []);
    assert.equal(a.got.length, 0);
    assert.equal(c.got.length, 0);
  } finally {
    await stopAll([a, c]);
  }
});

/** Opens a raw socket to `n`, writes `bytes`, resolves when the transport closes it. */
async function rawClosed(n: Node, bytes: Buffer): Promise<void> {
  const port = n.t.addresses()[0]!.port;
  const s = net.connect({ host: HOST, port });
  s.on('data', () => {}); // the ack, if any
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(bytes);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('transport did not close the connection')), 3000);
    s.once('close', () => { clearTimeout(t); resolve(); });
  });
}

test('peers: malformed input on a raw socket closes that connection only', async () => {
  const a = await startNode(1n);
  const b = await startNode(2n);
  try {
    connectAll([a, b]);
    await waitFor('b->a', () => connected(b, [1n]));
    const hello = frame(encodeHello({ version: PROTOCOL_VERSION, clusterId: 0xc1n, fromId: 9n, toId: 1n }));
    const badCrc = frame(Buffer.from('garbage!'));
    badCrc[9] ^= 0xff;
    const tooBig = Buffer.alloc(8);
    tooBig.writeUInt32LE(0xffffffff, 0);
    await rawClosed(a, Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await rawClosed(a, Buffer.concat([PREFACE, badCrc]));
    await rawClosed(a, Buffer.concat([PREFACE, tooBig]));
    await rawClosed(a, Buffer.concat([PREFACE, frame(Buffer.from('short hello'))]));
    await rawClosed(a, Buffer.concat([PREFACE, hello, frame(Buffer.from('not a raft message'))]));
    // A well-formed message that claims another sender.
    await rawClosed(a, Buffer.concat([PREFACE, hello, frame(encodeMessage(msg(2n, 1n, 0)))]));
    const warned = a.log.lines.filter((l) => l.msg.startsWith('malformed data on raft peer connection'));
    assert.equal(warned.length, 6);
    assert.equal(a.got.length, 0);
    // The real peer's connection is untouched.
    b.t.send([msg(2n, 1n, 42)]);
    await waitFor('b->a still works', () => a.got.length === 1);
    assert.equal(a.got[0]!.index, 42);
    assert.equal(a.t.stats().inboundConnections, 1);
  } finally {
    await stopAll([a, b]);
  }
});

test('peers: queue bound while a peer is down, oldest dropped and counted, the rest delivered in order', async () => {
  const port = await freePort();
  const a = await startNode(1n, { maxQueueBytes: 10_000 });
  let b: Node | null = null;
  try {
    a.t.addPeer(2n, `http://${HOST}:${port}`);
    const N = 1000;
    for (let i = 0; i < N; i++) a.t.send([msg(1n, 2n, i, MessageType.MsgHeartbeat)]);
    const snap: Message = { ...msg(1n, 2n, N), type: MessageType.MsgSnap, snapshot: { index: 5, term: 1, conf: { voters: [1n, 2n], learners: [] } } };
    a.t.send([snap]);
    a.t.send([msg(1n, 99n, 0)]); // unknown peer
    const s = a.t.stats();
    const p = s.peers[0]!;
    assert.equal(p.connected, false);
    assert.ok(p.queuedBytes <= 10_000, `queued ${p.queuedBytes}`);
    const kept = p.queuedMessages;
    assert.equal(p.drops + kept, N + 1);
    assert.equal(s.drops, p.drops + 1);
    assert.ok(a.log.lines.some((l) => l.msg.includes('queue full')));
    b = await startNode(2n, { port });
    const bb = b;
    await waitFor('queued messages delivered', () => bb.got.length === kept);
    // The newest survive, in order, the MsgSnap last.
    const idx = bb.got.map((m) => m.index);
    assert.deepEqual(idx, Array.from({ length: kept }, (_, i) => N + 1 - kept + i));
    assert.equal(bb.got.at(-1)!.type, MessageType.MsgSnap);
    assert.deepEqual(bb.got.at(-1)!.snapshot, snap.snapshot);
  } finally {
    await stopAll(b === null ? [a] : [a, b]);
  }
});

test('peers: removePeer closes both directions and refuses the member afterwards', async () => {
  const a = await startNode(1n);
  const b = await startNode(2n);
  try {
    connectAll([a, b]);
    await waitFor('connected', () => connected(a, [2n]) && connected(b, [1n]));
    a.t.removePeer(2n);
    await waitFor('b sees a refuse', () => b.log.lines.some((l) => l.msg.includes('permanently removed')));
    assert.deepEqual(a.t.stats().connectedPeers, []);
    b.t.send([msg(2n, 1n, 1)]);
    a.t.send([msg(1n, 2n, 1)]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.got.length, 0);
    assert.equal(b.got.length, 0);
    // Adding it back lets it in again.
    a.t.addPeer(2n, b.url);
    await waitFor('reconnected', () => connected(a, [2n]) && connected(b, [1n]), 15_000);
  } finally {
    await stopAll([a, b]);
  }
});

test('peers: a stopped peer is reported gone (its port refuses us, its stream to us ended); a live one never', async () => {
  const a = await startNode(1n, { backoffMs: 50 });
  const b = await startNode(2n, { backoffMs: 50 });
  try {
    connectAll([a, b]);
    await waitFor('both ways', () => connected(a, [2n]) && connected(b, [1n]));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(a.gone, []);
    await b.t.stop();
    await waitFor('b reported gone', () => a.gone.includes(2n), 3000);
  } finally {
    await stopAll([a, b]);
  }
});

test('peers: a refused dial is no report while the peer still has its connection to us open', async () => {
  // a dials b through a relay that can turn refusing (accept, then close before any answer,
  // as a proxy in front of a dead port does); b dials a directly and stays connected.
  const a = await startNode(1n, { backoffMs: 50 });
  const b = await startNode(2n, { backoffMs: 50 });
  const bPort = b.t.addresses()[0]!.port;
  let refusing = false;
  const relayed = new Set<net.Socket>();
  const relay = net.createServer((c) => {
    relayed.add(c);
    c.on('error', () => undefined);
    c.on('close', () => relayed.delete(c));
    if (refusing) { c.once('data', () => c.destroy()); return; }
    const up = net.connect({ host: HOST, port: bPort });
    relayed.add(up);
    up.on('error', () => undefined);
    up.on('close', () => { relayed.delete(up); c.destroy(); });
    c.on('close', () => up.destroy());
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((r) => relay.listen(0, HOST, r));
  try {
    a.t.addPeer(2n, `http://${HOST}:${(relay.address() as net.AddressInfo).port}`);
    b.t.addPeer(1n, a.url);
    await waitFor('both ways', () => connected(a, [2n]) && connected(b, [1n]));
    refusing = true;
    for (const s of relayed) s.destroy();
    await waitFor('a sees its link down', () => !connected(a, [2n]));
    await new Promise((r) => setTimeout(r, 400)); // several refused redials
    assert.deepEqual(a.gone, [], 'b is alive: its connection to a is open');
    b.t.send([msg(2n, 1n, 1)]);
    await waitFor('b still reaches a', () => a.got.length === 1);
    await b.t.stop();
    await waitFor('b reported gone once its stream ended', () => a.gone.includes(2n), 3000);
  } finally {
    await stopAll([a, b]);
    for (const s of relayed) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
  }
});

test('peers: a peer that accepts and never answers (handshake timeout) is not reported gone', async () => {
  const held: net.Socket[] = [];
  const silent = net.createServer((c) => { held.push(c); c.on('error', () => undefined); c.resume(); });
  await new Promise<void>((r) => silent.listen(0, HOST, r));
  const a = await startNode(1n, { backoffMs: 50, handshakeTimeoutMs: 100 });
  try {
    a.t.addPeer(2n, `http://${HOST}:${(silent.address() as net.AddressInfo).port}`);
    await waitFor('two handshake timeouts', () => held.length >= 2, 3000);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(a.gone, []);
  } finally {
    for (const c of held) c.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    await stopAll([a]);
  }
});

test('peers: a connection that was up a while and drops is redialled at once, not after the backoff', async () => {
  // a's backoff is a minute; the relay cuts a's live connection to b but lets the next one through.
  const a = await startNode(1n, { backoffMs: 60_000 });
  const b = await startNode(2n);
  const bPort = b.t.addresses()[0]!.port;
  const relayed = new Set<net.Socket>();
  const relay = net.createServer((c) => {
    const up = net.connect({ host: HOST, port: bPort });
    for (const s of [c, up]) { relayed.add(s); s.on('error', () => undefined); s.on('close', () => relayed.delete(s)); }
    up.on('close', () => c.destroy());
    c.on('close', () => up.destroy());
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((r) => relay.listen(0, HOST, r));
  try {
    a.t.addPeer(2n, `http://${HOST}:${(relay.address() as net.AddressInfo).port}`);
    await waitFor('a->b', () => connected(a, [2n]));
    await new Promise((r) => setTimeout(r, 1100));
    for (const s of relayed) s.destroy();
    await waitFor('a->b again, long before its backoff', () => a.t.stats().peers[0]!.connects === 2 && connected(a, [2n]), 2000);
    assert.deepEqual(a.gone, []);
  } finally {
    await stopAll([a, b]);
    for (const s of relayed) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
  }
});

test('peers: a peer whose dial was refused is reported gone when its stream to us ends, without another dial', async () => {
  // a's backoff is a minute: after the refused redial there is no other dial within the test.
  const a = await startNode(1n, { backoffMs: 60_000 });
  const b = await startNode(2n, { backoffMs: 50 });
  const bPort = b.t.addresses()[0]!.port;
  let refusing = false;
  let refused = 0;
  const relayed = new Set<net.Socket>();
  const relay = net.createServer((c) => {
    relayed.add(c);
    c.on('error', () => undefined);
    c.on('close', () => relayed.delete(c));
    if (refusing) { c.once('data', () => { refused++; c.destroy(); }); return; }
    const up = net.connect({ host: HOST, port: bPort });
    relayed.add(up);
    up.on('error', () => undefined);
    up.on('close', () => { relayed.delete(up); c.destroy(); });
    c.on('close', () => up.destroy());
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((r) => relay.listen(0, HOST, r));
  try {
    a.t.addPeer(2n, `http://${HOST}:${(relay.address() as net.AddressInfo).port}`);
    b.t.addPeer(1n, a.url);
    await waitFor('both ways', () => connected(a, [2n]) && connected(b, [1n]));
    await new Promise((r) => setTimeout(r, 1100)); // up long enough to be redialled at once
    refusing = true;
    for (const s of relayed) s.destroy();
    await waitFor('the redial refused', () => refused === 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(a.gone, [], 'b still has its stream to a');
    await b.t.stop();
    await waitFor('b reported gone as its stream ends', () => a.gone.includes(2n), 1000);
    assert.equal(refused, 1, 'no further dial was needed');
  } finally {
    await stopAll([a, b]);
    for (const s of relayed) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
  }
});
