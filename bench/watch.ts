// Watch benchmark (not a test): server memory per watcher, and event
// delivery latency to many watchers under a steady open-loop write rate.
//
//   node dist/bench/watch.js --target etsd,etcd            # starts each server itself
//   node dist/bench/watch.js --endpoints 127.0.0.1:2379 --pid 1234
//
// (a) memory: opens --mem-watchers watchers on distinct single keys over
//     --streams streams and reports the server's VmRSS growth per watcher
//     (/proc/<pid>/status; for etsd the process includes its worker threads).
// (b) latency: --lat-watchers watchers on --lat-keys keys (watchers/keys per
//     key), a writer putting those keys at --rate puts/s for --duration s
//     (open loop: each value carries its intended send time, so a stalled
//     server is not hidden), latency = receipt time - intended send time,
//     per event, in an HDR histogram.
// Servers are started on 127.0.0.1 with free ports and temp data dirs and
// stopped by PID (bench/load/servers.ts).

import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { encodePutRequest } from '../src/proto/kv-codec.js';
import { decodeWatchResponse, encodeWatchCreateRequest } from '../src/proto/watch-codec.js';
import { newHistogram, record, summarize, type LatencySummary } from './load/histogram.js';
import { startServer, stopAll, type Server, type Target } from './load/servers.js';

interface Opts {
  targets: Target[]; endpoints: string | null; pid: number | null;
  memWatchers: number; streams: number; conns: number;
  latWatchers: number; latKeys: number; rate: number; durationS: number; warmupS: number;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = {
    targets: ['etsd', 'etcd'], endpoints: null, pid: null, memWatchers: 100_000, streams: 100, conns: 10,
    latWatchers: 10_000, latKeys: 1_000, rate: 1_000, durationS: 15, warmupS: 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const need = (): string => { if (v === undefined) throw new Error(`${a} needs a value`); i++; return v; };
    switch (a) {
      case '--target': o.targets = need().split(',').map((t) => { if (t !== 'etcd' && t !== 'etsd') throw new Error(`unknown target ${t}`); return t; }); break;
      case '--endpoints': o.endpoints = need().split(',')[0]!; break;
      case '--pid': o.pid = Number(need()); break;
      case '--mem-watchers': o.memWatchers = Number(need()); break;
      case '--streams': o.streams = Number(need()); break;
      case '--conns': o.conns = Number(need()); break;
      case '--lat-watchers': o.latWatchers = Number(need()); break;
      case '--lat-keys': o.latKeys = Number(need()); break;
      case '--rate': o.rate = Number(need()); break;
      case '--duration': o.durationS = parseFloat(need()); break;
      case '--warmup': o.warmupS = parseFloat(need()); break;
      case '--help': case '-h':
        console.log('usage: node dist/bench/watch.js [--target etsd,etcd | --endpoints host:port [--pid N]] [--mem-watchers 100000] ' +
          '[--streams 100] [--conns 10] [--lat-watchers 10000] [--lat-keys 1000] [--rate 1000] [--duration 15] [--warmup 2]');
        process.exit(0);
      default: throw new Error(`unknown flag ${a}`);
    }
  }
  if (o.streams < o.conns) o.conns = o.streams;
  return o;
}

const identity = (b: Buffer): Buffer => b;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const WATCH = '/etcdserverpb.Watch/Watch';
const PUT = '/etcdserverpb.KV/Put';
const CREATE_TIMEOUT_MS = 120_000;
const SETTLE_MS = 2_000;
/** Extra time after the last put for the last events to arrive. */
const DRAIN_MS = 3_000;

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14, 15; USER_HZ is 100 on Linux
}

function clients(endpoint: string, n: number): grpc.Client[] {
  return Array.from({ length: n }, () => new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
  }));
}

interface Streams { calls: grpc.ClientDuplexStream<Buffer, Buffer>[]; conns: grpc.Client[]; created: () => number; close(): void }

/**
 * Opens `streams` streams over `conns` connections and `watchers` watchers on
 * keyOf(i) (round-robin over the streams); onEvents sees every event response.
 */
function openWatchers(endpoint: string, nConns: number, nStreams: number, watchers: number, keyOf: (i: number) => Buffer,
  onData?: (buf: Buffer, now: number) => void): Streams {
  const conns = clients(endpoint, nConns);
  let created = 0;
  const calls = Array.from({ length: nStreams }, (_, s) => {
    const call = conns[s % nConns]!.makeBidiStreamRequest<Buffer, Buffer>(WATCH, identity, identity);
    call.on('data', (buf: Buffer) => {
      // Memory part: no writes happen, so every response is a created one.
      if (!onData) { created++; return; }
      const now = performance.now();
      onData(buf, now);
    });
    call.on('error', (e: grpc.ServiceError) => { if (e.code !== grpc.status.CANCELLED) console.error(`watch stream ${s}: ${e.message}`); });
    return call;
  });
  for (let i = 0; i < watchers; i++) calls[i % nStreams]!.write(encodeWatchCreateRequest({ key: keyOf(i) }));
  return {
    calls, conns, created: () => created,
    close() { for (const c of calls) c.cancel(); for (const c of conns) c.close(); },
  };
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface MemResult { watchers: number; rssBeforeMb: number; rssAfterMb: number; bytesPerWatcher: number; createS: number; load: string }

async function memoryPart(endpoint: string, pid: number, o: Opts): Promise<MemResult> {
  const load = loadavg();
  const before = rssKb(pid);
  const t0 = performance.now();
  let n = 0;
  const st = openWatchers(endpoint, o.conns, o.streams, o.memWatchers, (i) => Buffer.from(`mem/${String(i).padStart(7, '0')}`));
  const count = () => { n = st.created(); return n >= o.memWatchers; };
  try {
    await waitUntil(count, CREATE_TIMEOUT_MS, `${o.memWatchers} created responses (got ${n})`);
    const createS = (performance.now() - t0) / 1000;
    await sleep(SETTLE_MS);
    const after = rssKb(pid);
    return { watchers: o.memWatchers, rssBeforeMb: before / 1024, rssAfterMb: after / 1024, bytesPerWatcher: ((after - before) * 1024) / o.memWatchers, createS, load };
  } finally {
    st.close();
  }
}

interface LatResult {
  watchers: number; keys: number; rate: number; puts: number; putErrors: number; expected: number; received: number;
  lat: LatencySummary; serverCpu: number | null; clientCpu: number; load: string;
}

async function latencyPart(endpoint: string, pid: number | null, o: Opts): Promise<LatResult> {
  const keyOf = (k: number) => Buffer.from(`lat/${String(k).padStart(5, '0')}`);
  const hist = newHistogram();
  let received = 0;
  let created = 0;
  const st = openWatchers(endpoint, o.conns, o.streams, o.latWatchers, (i) => keyOf(i % o.latKeys), (buf, now) => {
    const r = decodeWatchResponse(buf);
    if (r.created) { created++; return; }
    for (const e of r.events) {
      if (e.kv.value.length < 9) continue;
      const sentAt = e.kv.value.readDoubleLE(0);
      if (e.kv.value[8] !== 1) continue; // written during warm-up
      received++;
      record(hist, Math.round((now - sentAt) * 1000));
    }
  });
  const [writer] = clients(endpoint, 1);
  let putErrors = 0;
  try {
    await waitUntil(() => created >= o.latWatchers, CREATE_TIMEOUT_MS, `${o.latWatchers} created responses`);
    await sleep(500);
    const load = loadavg();
    // Open loop: put #i is due at start + i / rate; its value holds that intended time.
    const put = (i: number, due: number, measured: boolean) => {
      const value = Buffer.alloc(16);
      value.writeDoubleLE(due, 0);
      value[8] = measured ? 1 : 0;
      const body = encodePutRequest({ key: keyOf(i % o.latKeys), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
      writer!.makeUnaryRequest<Buffer, Buffer>(PUT, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + 30_000 },
        (err) => { if (err) putErrors++; });
    };
    const run = async (seconds: number, measured: boolean): Promise<number> => {
      const total = Math.round(seconds * o.rate);
      const start = performance.now();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000) + 1);
        for (; sent < due; sent++) put(sent, start + (sent * 1000) / o.rate, measured);
        await sleep(1);
      }
      return total;
    };
    await run(o.warmupS, false);
    const cpu0 = pid !== null ? cpuSeconds(pid) : 0;
    const myCpu0 = process.cpuUsage();
    const t0 = performance.now();
    const puts = await run(o.durationS, true);
    const expected = puts * (o.latWatchers / o.latKeys);
    const drainEnd = Date.now() + DRAIN_MS;
    while (received < expected && Date.now() < drainEnd) await sleep(20);
    const secs = (performance.now() - t0) / 1000;
    const serverCpu = pid !== null ? (cpuSeconds(pid) - cpu0) / secs : null;
    const my = process.cpuUsage(myCpu0);
    return {
      watchers: o.latWatchers, keys: o.latKeys, rate: o.rate, puts, putErrors, expected, received,
      lat: summarize(hist), serverCpu, clientCpu: (my.user + my.system) / 1e6 / secs, load,
    };
  } finally {
    st.close();
    writer!.close();
  }
}

function loadavg(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

interface Row { target: string; mem: MemResult | null; lat: LatResult }

function table(rows: Row[]): string {
  const ms = (us: number) => (us / 1000).toFixed(2);
  const lines: [string, ...string[]][] = [
    ['', ...rows.map((r) => r.target)],
    ['(a) watchers opened', ...rows.map((r) => (r.mem ? String(r.mem.watchers) : 'n/a'))],
    ['    time to create all (s)', ...rows.map((r) => (r.mem ? r.mem.createS.toFixed(1) : 'n/a'))],
    ['    server RSS before -> after (MB)', ...rows.map((r) => (r.mem ? `${r.mem.rssBeforeMb.toFixed(0)} -> ${r.mem.rssAfterMb.toFixed(0)}` : 'n/a'))],
    ['    RSS growth per watcher (bytes)', ...rows.map((r) => (r.mem ? r.mem.bytesPerWatcher.toFixed(0) : 'n/a'))],
    ['    load average at start', ...rows.map((r) => (r.mem ? r.mem.load : 'n/a'))],
    ['(b) watchers / keys / puts per s', ...rows.map((r) => `${r.lat.watchers} / ${r.lat.keys} / ${r.lat.rate}`)],
    ['    puts (errors)', ...rows.map((r) => `${r.lat.puts} (${r.lat.putErrors})`)],
    ['    events received / expected', ...rows.map((r) => `${r.lat.received} / ${r.lat.expected}`)],
    ['    latency p50 (ms)', ...rows.map((r) => ms(r.lat.lat.p50))],
    ['    latency p90 (ms)', ...rows.map((r) => ms(r.lat.lat.p90))],
    ['    latency p99 (ms)', ...rows.map((r) => ms(r.lat.lat.p99))],
    ['    latency p99.9 (ms)', ...rows.map((r) => ms(r.lat.lat.p999))],
    ['    latency max (ms)', ...rows.map((r) => ms(r.lat.lat.max))],
    ['    server CPU (cores)', ...rows.map((r) => (r.lat.serverCpu === null ? 'n/a' : r.lat.serverCpu.toFixed(2)))],
    ['    bench client CPU (cores)', ...rows.map((r) => r.lat.clientCpu.toFixed(2))],
    ['    load average at start', ...rows.map((r) => r.lat.load)],
  ];
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => (l[c] ?? '').length)));
  return lines.map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]! + 2))).join('')).join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rows: Row[] = [];
  console.log(`machine: ${os.cpus().length} cores, load average ${loadavg()}`);
  if (o.endpoints !== null) {
    const mem = o.pid !== null ? await memoryPart(o.endpoints, o.pid, o) : null;
    rows.push({ target: o.endpoints, mem, lat: await latencyPart(o.endpoints, o.pid, o) });
  } else {
    for (const t of o.targets) {
      // A fresh server for each part, so (b) does not run on the heap (a) left behind.
      let s: Server = await startServer(t);
      console.log(`${t}: pid ${s.pid} on ${s.endpoint}: memory part...`);
      const mem = await memoryPart(s.endpoint, s.pid, o);
      await s.stop();
      s = await startServer(t);
      console.log(`${t}: pid ${s.pid} on ${s.endpoint}: latency part...`);
      const lat = await latencyPart(s.endpoint, s.pid, o);
      await s.stop();
      rows.push({ target: t, mem, lat });
    }
  }
  console.log('\n' + table(rows));
  console.log(`\nload average at the end: ${loadavg()}`);
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exit(1);
}).then(() => process.exit(0));
