// Run: npx tsc -p tsconfig.json && node dist/bench/transport.js   (about 20 s; BENCH_SECONDS per case, default 4)
//
// Raft peer transport throughput on loopback: member 1 (this thread) sends to
// member 2 (a worker thread, so each end has its own event loop, as two members
// would). The sender keeps its peer queue under 1 MiB so nothing is dropped and the
// socket stays busy; the receiver counts what onMessage sees. Also prints the codec's
// own cost per message and the sender thread's event-loop utilisation.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Packr } from 'msgpackr';
import { PeerTransport } from '../src/transport/peer-transport.js';
import { decodeMessage, encodeMessage, encodeMessageInto } from '../src/transport/message-codec.js';
import { MessageType, type Message } from '../src/raft/types.js';

const HOST = '127.0.0.1';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const WARMUP_MS = 500;
const HIGH_WATER = 1024 * 1024;

interface Count { type: 'count'; messages: number; bytes: number }

function heartbeat(i: number): Message {
  return { type: MessageType.MsgHeartbeat, from: 1n, to: 2n, term: 5, logTerm: 0, index: 0, entries: [], commit: i, reject: false, rejectHint: 0 };
}

const DATA_4K = new Uint8Array(4096).fill(7);

function append(i: number, entries: number): Message {
  const es = [];
  for (let k = 0; k < entries; k++) es.push({ index: i * entries + k + 1, term: 5, data: DATA_4K });
  return { type: MessageType.MsgApp, from: 1n, to: 2n, term: 5, logTerm: 5, index: i * entries, entries: es, commit: i, reject: false, rejectHint: 0 };
}

async function receiver(): Promise<void> {
  const port = parentPort!;
  let messages = 0;
  const t = new PeerTransport({
    selfId: 2n, clusterId: 1n, listen: [{ host: HOST, port: 0 }], peers: new Map(),
    onMessage: () => { messages++; },
  });
  await t.start();
  port.postMessage({ type: 'ready', port: t.addresses()[0]!.port });
  const timer = setInterval(() => {
    const bytes = t.stats().otherSenders.find((s) => s.id === 1n)?.receivedBytes ?? 0;
    port.postMessage({ type: 'count', messages, bytes } satisfies Count);
  }, 50);
  port.on('message', (m: { type: string }) => {
    if (m.type === 'stop') {
      clearInterval(timer);
      void t.stop().then(() => port.close());
    }
  });
}

/** The same message through msgpackr (what the design card suggests for structured records), for comparison. */
const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });

/**
 * Encode and decode cost per message. Encoding goes where the sender puts it:
 * ours into the transport's reused send buffer (encodeMessageInto, as
 * peer-transport.ts does), msgpackr into its own reused buffer (pack).
 */
function timeCodec(msgs: Message[], n: number, encode: (m: Message) => number, copyOut: (m: Message) => Buffer, dec: (b: Buffer) => unknown): { bytes: number; encNs: number; decNs: number } {
  let sink = 0;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) sink += encode(msgs[i % 1000]!);
  const encNs = ((performance.now() - t0) * 1e6) / n;
  const bufs = msgs.map(copyOut);
  t0 = performance.now();
  for (let i = 0; i < n; i++) if (dec(bufs[i % 1000]!) === null) sink++;
  const decNs = ((performance.now() - t0) * 1e6) / n;
  if (sink === -1) console.log('!');
  return { bytes: bufs[0]!.length, encNs, decNs };
}

const SEND_BUFFER = Buffer.allocUnsafe(1 << 20);
const DATA_300 = new Uint8Array(300).fill(3);

function codecCost(): void {
  for (const [name, make, n] of [
    ['heartbeat', heartbeat, 300_000],
    ['append 8 x 300 B', (i: number) => ({ ...append(i, 8), entries: append(i, 8).entries.map((e) => ({ ...e, data: DATA_300 })) }), 100_000],
    ['append 1 x 4 KiB', (i: number) => append(i, 1), 50_000],
    ['append 64 x 4 KiB', (i: number) => append(i, 64), 1_000],
  ] as const) {
    const msgs = Array.from({ length: 1000 }, (_, i) => make(i));
    const ours = timeCodec(msgs, n, (m) => encodeMessageInto(m, SEND_BUFFER, 0), encodeMessage, (b) => decodeMessage(b));
    const mp = timeCodec(msgs, n, (m) => packr.pack(m).length, (m) => Buffer.from(packr.pack(m)), (b) => packr.unpack(b));
    const row = (codec: string, r: typeof ours) =>
      `codec ${name.padEnd(18)} ${codec.padEnd(8)} ${String(r.bytes).padStart(7)} B  encode ${r.encNs.toFixed(0).padStart(6)} ns  decode ${r.decNs.toFixed(0).padStart(6)} ns`;
    console.log(row('ours', ours));
    console.log(row('msgpackr', mp));
  }
}

async function main(): Promise<void> {
  codecCost();
  const worker = new Worker(new URL(import.meta.url), { workerData: {} });
  let latest: Count = { type: 'count', messages: 0, bytes: 0 };
  const ready = new Promise<number>((resolve) => {
    worker.on('message', (m: { type: string; port?: number; messages?: number; bytes?: number }) => {
      if (m.type === 'ready') resolve(m.port!);
      else if (m.type === 'count') latest = m as Count;
    });
  });
  const port = await ready;
  const a = new PeerTransport({
    selfId: 1n, clusterId: 1n, listen: [{ host: HOST, port: 0 }], peers: new Map([[2n, `http://${HOST}:${port}`]]),
    onMessage: () => {},
  });
  await a.start();
  while (a.stats().connectedPeers.length === 0) await new Promise((r) => setTimeout(r, 10));

  const cases: [string, (i: number) => Message, number][] = [
    ['heartbeats', heartbeat, 512],
    ['append 1 x 4 KiB entry', (i) => append(i, 1), 64],
    ['append 16 x 4 KiB entries', (i) => append(i, 16), 8],
  ];
  const only = process.env['BENCH_CASES'];
  for (const [name, make, perTurn] of cases) {
    if (only !== undefined && !only.split(',').some((w) => name.includes(w))) continue;
    let running = true;
    let i = 0;
    const pump = (): void => {
      if (!running) return;
      if (a.stats().peers[0]!.queuedBytes < HIGH_WATER) {
        const batch: Message[] = [];
        for (let k = 0; k < perTurn; k++) batch.push(make(i++));
        a.send(batch);
      }
      setImmediate(pump);
    };
    pump();
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const c0 = latest;
    const t0 = performance.now();
    const elu0 = performance.eventLoopUtilization();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const c1 = latest;
    const secs = (performance.now() - t0) / 1000;
    const elu = performance.eventLoopUtilization(elu0);
    running = false;
    // Let the queue drain before the next case.
    while (a.stats().peers[0]!.queuedBytes > 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    const mps = (c1.messages - c0.messages) / secs;
    const mbs = (c1.bytes - c0.bytes) / secs / 1e6;
    console.log(`${name.padEnd(26)} ${Math.round(mps).toLocaleString('en-US').padStart(10)} msg/s  ${mbs.toFixed(1).padStart(7)} MB/s  sender ELU ${(elu.utilization * 100).toFixed(0)}%`);
  }
  const s = a.stats();
  console.log(`drops ${s.drops}, sent ${s.peers[0]!.sentMessages} messages / ${(s.peers[0]!.sentBytes / 1e6).toFixed(1)} MB`);
  await a.stop();
  worker.postMessage({ type: 'stop' });
}

if (isMainThread) await main();
else {
  void workerData;
  await receiver();
}
