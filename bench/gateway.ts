// Put through the HTTP/JSON gateway: etsd against real etcd 3.4's grpc-gateway,
// same machine, same run, same load. Not a test: run it by hand.
//
// Each target gets --clients concurrent HTTP/1.1 keep-alive clients (one
// socket each), each a closed loop of POST /v3/kv/put with a JSON body
// (base64 key and value, as etcd's gateway reads them) for --duration after
// --warmup. Prints req/s, p50 and p99 per target and the etsd/etcd ratio.
//
//   npm run build
//   node dist/bench/gateway.js --clients 100 --duration 8s --warmup 1s --val-size 256
//
// The load runs in this one process, so it caps what either server can show;
// both targets face the same cap.
import http from 'node:http';
import { startServer, stopAll, type Target } from './load/servers.js';
import { newHistogram, record, summarize, type LatencySummary } from './load/histogram.js';
import { parseDuration } from './load/args.js';

interface Options { targets: Target[]; clients: number; durationMs: number; warmupMs: number; valSize: number; keySpace: number }

function parseArgs(argv: string[]): Options {
  const o: Options = { targets: ['etcd', 'etsd'], clients: 100, durationMs: 8000, warmupMs: 1000, valSize: 256, keySpace: 10_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], argv[i + 1]];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--targets') o.targets = v.split(',') as Target[];
    else if (flag === '--clients') o.clients = Number(v);
    else if (flag === '--duration') o.durationMs = parseDuration(v) * 1000; // parseDuration gives seconds
    else if (flag === '--warmup') o.warmupMs = parseDuration(v) * 1000;
    else if (flag === '--val-size') o.valSize = Number(v);
    else if (flag === '--key-space-size') o.keySpace = Number(v);
    else throw new Error(`unknown flag ${flag}`);
  }
  return o;
}

interface Result { target: Target; reqPerSec: number; errors: number; latency: LatencySummary }

function post(agent: http.Agent, base: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent, host: base.hostname, port: base.port, method: 'POST', path: '/v3/kv/put',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(target: Target, o: Options): Promise<Result> {
  const server = await startServer(target);
  try {
    const first = server.endpoint.split(',')[0]!;
    const base = new URL(first.includes('://') ? first : `http://${first}`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
    const value = Buffer.alloc(o.valSize, 'v').toString('base64');
    const hist = newHistogram();
    let ok = 0;
    let errors = 0;
    const t0 = performance.now();
    const measureFrom = t0 + o.warmupMs;
    const end = measureFrom + o.durationMs;
    const client = async (c: number): Promise<void> => {
      for (let i = 0; performance.now() < end; i++) {
        const key = Buffer.from(`gw/${(c * 7919 + i) % o.keySpace}`).toString('base64');
        const start = performance.now();
        let status = 0;
        try {
          status = await post(agent, base, `{"key":"${key}","value":"${value}"}`);
        } catch (err) {
          errors++;
          if (errors === 1) console.error(`${target}: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        if (start < measureFrom) continue;
        if (status !== 200) { errors++; continue; }
        ok++;
        record(hist, Math.round((performance.now() - start) * 1000));
      }
    };
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
    agent.destroy();
    const elapsed = performance.now() - measureFrom;
    console.log(`${target}: ${ok} ok in ${elapsed.toFixed(0)} ms, mean ${(hist.mean / 1000).toFixed(1)} ms`);
    return { target, reqPerSec: ok / (elapsed / 1000), errors, latency: summarize(hist) };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const results: Result[] = [];
  for (const t of o.targets) {
    const r = await run(t, o);
    results.push(r);
    console.log(`${t}: ${Math.round(r.reqPerSec)} req/s, p50 ${(r.latency.p50 / 1000).toFixed(2)} ms, p99 ${(r.latency.p99 / 1000).toFixed(2)} ms, ${r.errors} errors`);
  }
  const etcd = results.find((r) => r.target === 'etcd');
  const etsd = results.find((r) => r.target === 'etsd');
  if (etcd && etsd && etcd.reqPerSec > 0) {
    console.log(`etsd/etcd: throughput ${(etsd.reqPerSec / etcd.reqPerSec).toFixed(2)}x, p99 ${(etsd.latency.p99 / etcd.latency.p99).toFixed(2)}x`);
  }
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exitCode = 1;
});
