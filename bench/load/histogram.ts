// Latency histograms: microsecond resolution, 3 significant digits, values
// up to one hour. Workers ship them to the main thread as compressed base64.
import * as hdr from 'hdr-histogram-js';

export type Histogram = hdr.Histogram;
export const MAX_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: MAX_US, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

export function record(h: Histogram, us: number): void {
  h.recordValue(us < 1 ? 1 : us > MAX_US ? MAX_US : us);
}

export function encode(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function mergeInto(target: Histogram, encoded: string): void {
  target.add(hdr.decodeFromCompressedBase64(encoded, 'packed', false));
}

export interface LatencySummary {
  count: number; min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number;
}

export function summarize(h: Histogram): LatencySummary {
  const n = h.totalCount;
  return {
    count: n,
    min: n ? h.minNonZeroValue : 0,
    mean: n ? Math.round(h.mean) : 0,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

/** (percentile, latency us) points, evenly spaced on a "nines" axis, for plots. */
export function percentileCurve(h: Histogram): { p: number; us: number }[] {
  const n = h.totalCount;
  if (n === 0) return [];
  const maxNines = Math.min(6, Math.log10(n));
  const pts: { p: number; us: number }[] = [];
  for (let x = 0; x <= maxNines + 1e-9; x += 0.05) {
    const p = 100 * (1 - Math.pow(10, -x));
    pts.push({ p: Number(p.toFixed(6)), us: h.getValueAtPercentile(p) });
  }
  pts.push({ p: 100, us: h.maxValue });
  return pts;
}
