// Side by side: grpc-js against etsd's gRPC server on its own HTTP/2 framing
// (src/grpc/), both serving one trivial unary handler that answers a
// pre-encoded ~50-byte response. The server runs in a child process (one
// core); this process loads it with the raw HTTP/2 client of bench/load
// (h2raw.ts) in a closed loop, and the child reports its own CPU
// (process.cpuUsage) over the measured window. (A node:http2 version of the
// server measured 30-40 us/call here before it was replaced.)
//
// Usage: node dist/bench/h2raw-server.js [--impl grpc-js,raw] [--conns 4] [--inflight 64]
//          [--warmup-ms 1000] [--measure-ms 4000] [--rounds 1]
//        node dist/bench/h2raw-server.js serve <grpc-js|raw>     (the child)
//        node dist/bench/h2raw-server.js listen <grpc-js|raw> [port]   (for bench/load/cli.js)

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { RawH2Conn } from './load/h2raw.js';

const PATH = '/etcdserverpb.KV/Put';
// A PutResponse-shaped body: header { cluster_id, member_id, revision, raft_term }.
const RESPONSE = Buffer.from('0a2c08d2a0b1c2d3e4f5a61210e1c2b3a4b5c6d7e8f00118a08d0620c8013a0c0a0a0a0a0a0a0a0a0a0a0a0a', 'hex');
// A PutRequest: key 16 B, value 32 B.
const REQUEST = Buffer.concat([Buffer.from([0x0a, 16]), Buffer.alloc(16, 0x6b), Buffer.from([0x12, 32]), Buffer.alloc(32, 0x76)]);

type Impl = 'grpc-js' | 'raw';
type ToChild = { cmd: 'start' } | { cmd: 'stop' };
type FromChild = { ready: number } | { cpuUs: number; elu: number };

let served = 0;

async function serve(impl: Impl, fixedPort = 0): Promise<number> {
  const handler = (_req: Buffer) => { served++; return RESPONSE; };
  let port: number;
  if (impl === 'grpc-js') {
    // Registered with raw Buffers and identity (de)serializers, as the grpc-js server etsd used to run did.
    const id = (b: Buffer) => b;
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': -1 });
    server.addService({
      Put: { path: PATH, requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id,
        responseSerialize: id, responseDeserialize: id, originalName: 'Put' },
    } as grpc.ServiceDefinition, {
      Put: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, handler(call.request)),
    });
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${fixedPort}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  } else if (impl === 'raw') {
    const { createRawGrpcServer } = await import('../src/grpc/server.js');
    const { listenShared } = await import('../src/grpc/port-sharing.js');
    const server = createRawGrpcServer({ unary: new Map([[PATH, handler]]), maxRecvBytes: 2 * 1024 * 1024 });
    const h1 = http.createServer((_q, r) => r.end('ok'));
    port = (await listenShared({ host: '127.0.0.1', port: fixedPort }, server.http2, h1)).address.port;
  } else {
    throw new Error(`unknown server implementation ${String(impl)}`);
  }
  if (process.send === undefined) return port;   // the standalone `listen` mode
  let cpu0 = process.cpuUsage();
  let elu0 = performance.eventLoopUtilization();
  process.on('message', (m: ToChild) => {
    if (m.cmd === 'start') {
      cpu0 = process.cpuUsage();
      elu0 = performance.eventLoopUtilization();
    } else {
      const d = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0).utilization;
      process.send!({ cpuUs: d.user + d.system, elu } satisfies FromChild);
    }
  });
  process.on('disconnect', () => process.exit(0));   // lets --cpu-prof write its profile
  process.send!({ ready: port } satisfies FromChild);
  return port;
}

/**
 * Standalone, for the project's load generator: serves on the port and, on
 * SIGINT/SIGTERM, prints calls served and CPU per call since the first call.
 *   node dist/bench/h2raw-server.js listen raw 23790 &
 *   node dist/bench/load/cli.js put --endpoints 127.0.0.1:23790 --conns 4 --clients 256 --duration 4s
 */
async function listenStandalone(impl: Impl, port: number): Promise<void> {
  const bound = await serve(impl, port);
  console.log(`${impl} listening on 127.0.0.1:${bound}`);
  let cpu0: NodeJS.CpuUsage | null = null;
  let t0 = 0n;
  let base = 0;
  const poll = setInterval(() => {
    if (cpu0 === null && served > 0) { cpu0 = process.cpuUsage(); t0 = process.hrtime.bigint(); base = served; }
  }, 5);
  const stop = () => {
    clearInterval(poll);
    if (cpu0 !== null) {
      const d = process.cpuUsage(cpu0);
      const calls = served - base;
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(`${impl}: ${calls} calls in ${secs.toFixed(1)} s, server CPU ${((d.user + d.system) / Math.max(1, calls)).toFixed(1)} us/call ` +
        `(${((d.user + d.system) / 1e4 / secs).toFixed(0)} % of a core, idle tail included)`);
    }
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function nextMessage(child: ChildProcess): Promise<FromChild> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m as FromChild)));
}

interface Result { impl: Impl; calls: number; errors: number; seconds: number; serverCpuUs: number; elu: number; clientCpuUs: number }

async function runOne(impl: Impl, conns: number, inflight: number, warmupMs: number, measureMs: number): Promise<Result> {
  // BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the server.
  const execArgv = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = fork(fileURLToPath(import.meta.url), ['serve', impl], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  try {
    const ready = await nextMessage(child);
    if (!('ready' in ready)) throw new Error('child did not start');
    const framed = Buffer.allocUnsafe(5 + REQUEST.length);
    framed[0] = 0;
    framed.writeUInt32BE(REQUEST.length, 1);
    REQUEST.copy(framed, 5);
    const cs: RawH2Conn[] = [];
    for (let i = 0; i < conns; i++) {
      const c = new RawH2Conn(`127.0.0.1:${ready.ready}`);
      await c.connect();
      cs.push(c);
    }
    let counting = false;
    let stopping = false;
    let calls = 0;
    let errors = 0;
    let outstanding = 0;
    let drained: (() => void) | null = null;
    const fire = (c: RawH2Conn) => {
      outstanding++;
      c.unary(PATH, framed, (status, _msg, payload) => {
        outstanding--;
        if (counting) {
          if (status === 0 && payload !== null && payload.length === RESPONSE.length) calls++;
          else errors++;
        }
        if (!stopping) fire(c);
        else if (outstanding === 0 && drained) drained();
      });
    };
    for (const c of cs) for (let i = 0; i < inflight; i++) fire(c);
    await new Promise((r) => setTimeout(r, warmupMs));
    child.send({ cmd: 'start' } satisfies ToChild);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    counting = true;
    await new Promise((r) => setTimeout(r, measureMs));
    counting = false;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cd = process.cpuUsage(cpu0);
    const statsP = nextMessage(child);
    child.send({ cmd: 'stop' } satisfies ToChild);
    const stats = await statsP;
    if (!('cpuUs' in stats)) throw new Error('no stats');
    stopping = true;
    await new Promise<void>((r) => { drained = r; if (outstanding === 0) r(); setTimeout(r, 2000); });
    for (const c of cs) c.close();
    return { impl, calls, errors, seconds, serverCpuUs: stats.cpuUs, elu: stats.elu, clientCpuUs: cd.user + cd.system };
  } finally {
    child.disconnect();   // the child exits on disconnect (a clean exit, so --cpu-prof writes its file)
  }
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') { await serve(process.argv[3] as Impl); return; }
  if (process.argv[2] === 'listen') { await listenStandalone(process.argv[3] as Impl, Number(process.argv[4] ?? 23790)); return; }
  const impls = arg('impl', 'grpc-js,raw').split(',') as Impl[];
  const conns = Number(arg('conns', '4'));
  const inflight = Number(arg('inflight', '64'));
  const warmupMs = Number(arg('warmup-ms', '1000'));
  const measureMs = Number(arg('measure-ms', '4000'));
  const rounds = Number(arg('rounds', '1'));
  console.log(`unary ${PATH}, request ${REQUEST.length} B, response ${RESPONSE.length} B; ${conns} conns x ${inflight} in flight; ` +
    `warm-up ${warmupMs} ms, measure ${measureMs} ms`);
  console.log('impl      calls/s   errors  server CPU %  server CPU us/call  server ELU  client CPU us/call');
  for (let r = 0; r < rounds; r++) {
    for (const impl of impls) {
      const x = await runOne(impl, conns, inflight, warmupMs, measureMs);
      const rps = x.calls / x.seconds;
      console.log(`${impl.padEnd(8)} ${rps.toFixed(0).padStart(8)} ${String(x.errors).padStart(8)} ` +
        `${(x.serverCpuUs / 1e4 / x.seconds).toFixed(0).padStart(12)} ${(x.serverCpuUs / Math.max(1, x.calls)).toFixed(1).padStart(19)} ` +
        `${x.elu.toFixed(2).padStart(11)} ${(x.clientCpuUs / Math.max(1, x.calls)).toFixed(1).padStart(19)}`);
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
