import * as hdr from 'hdr-histogram-js';

/** The stages a write goes through, and a read's. */
export const WRITE_STAGES = ['received->proposed', 'proposed->durable', 'durable->committed', 'committed->applied', 'applied->responded', 'total'] as const;
export const READ_STAGES = ['received->dispatched', 'dispatched->served', 'served->responded', 'total'] as const;
/** A write a follower forwarded to the leader: applied here once the leader's log reaches us. */
export const FORWARDED_STAGES = ['received->forwarded', 'forwarded->applied', 'applied->responded', 'total'] as const;
export type Stage = (typeof WRITE_STAGES)[number] | (typeof READ_STAGES)[number] | (typeof FORWARDED_STAGES)[number];

/**
 * hdr-histogram-js's WebAssembly histograms: a record costs ~30 ns there and
 * ~150 ns in its JavaScript one (log2 and pow per value), and every write
 * records six stages (perf: pow alone was 3% of the main thread at 1000
 * clients). Node has WebAssembly unless run with --jitless.
 */
const WASM = typeof WebAssembly === 'object';
let wasmReady = false;

function newHistogram(): hdr.Histogram {
  if (WASM && !wasmReady) {
    hdr.initWebAssemblySync();
    wasmReady = true;
  }
  // Microseconds, 1 us .. 60 s, 2 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 2, useWebAssembly: WASM });
}

/** One RPC's histograms, by stage. */
export class RpcStages {
  readonly byStage = new Map<Stage, hdr.Histogram>();

  record(stage: Stage, micros: number): void {
    let hist = this.byStage.get(stage);
    if (!hist) this.byStage.set(stage, (hist = newHistogram()));
    hist.recordValue(Math.max(1, Math.min(60_000_000, Math.round(micros))));
  }
}

export interface StageSummary { count: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number }

/**
 * Per-RPC, per-stage latency histograms (HDR, microseconds), on the main
 * thread. This is what etcd does not give its users: where a request's time
 * went, readable live at /debug/latency and resettable.
 */
export class StageHistograms {
  private readonly h = new Map<string, RpcStages>();
  private since = Date.now();

  /** The histograms of one RPC (a request's stages are recorded through one lookup). */
  of(rpc: string): RpcStages {
    let m = this.h.get(rpc);
    if (!m) this.h.set(rpc, (m = new RpcStages()));
    return m;
  }

  record(rpc: string, stage: Stage, micros: number): void {
    this.of(rpc).record(stage, micros);
  }

  reset(): void {
    for (const m of this.h.values()) for (const hist of m.byStage.values()) hist.reset();
    this.since = Date.now();
  }

  snapshot(): { since: string; unit: 'microseconds'; rpcs: Record<string, Record<string, StageSummary>> } {
    const rpcs: Record<string, Record<string, StageSummary>> = {};
    for (const [rpc, { byStage: m }] of [...this.h].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      const stages: Record<string, StageSummary> = {};
      const order = [...WRITE_STAGES, ...FORWARDED_STAGES, ...READ_STAGES] as string[];
      for (const [stage, hist] of [...m].sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))) {
        if (hist.totalCount === 0) continue;
        stages[stage] = {
          count: hist.totalCount, mean: Math.round(hist.mean), p50: hist.getValueAtPercentile(50), p90: hist.getValueAtPercentile(90),
          p99: hist.getValueAtPercentile(99), p999: hist.getValueAtPercentile(99.9), max: hist.maxValue,
        };
      }
      rpcs[rpc] = stages;
    }
    return { since: new Date(this.since).toISOString(), unit: 'microseconds', rpcs };
  }

  text(): string {
    const s = this.snapshot();
    const lines = [`# etsd per-stage latency since ${s.since} (microseconds)`, ''];
    const row = (c: string[]) => c.map((x, i) => (i < 2 ? x.padEnd(i === 0 ? 14 : 22) : x.padStart(9))).join(' ');
    lines.push(row(['rpc', 'stage', 'count', 'mean', 'p50', 'p90', 'p99', 'p99.9', 'max']));
    for (const [rpc, stages] of Object.entries(s.rpcs)) {
      for (const [stage, v] of Object.entries(stages)) {
        lines.push(row([rpc, stage, String(v.count), String(v.mean), String(v.p50), String(v.p90), String(v.p99), String(v.p999), String(v.max)]));
      }
    }
    return lines.join('\n') + '\n';
  }
}
