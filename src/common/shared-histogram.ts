// A Prometheus-style histogram in a SharedArrayBuffer: a worker observes,
// the main thread reads. Counts per bucket plus the sum, updated with Atomics.

export interface SharedHistogramLayout { sab: SharedArrayBuffer; bounds: number[] }

/** etcd's disk histograms: prometheus.ExponentialBuckets(0.001, 2, 14), in seconds. */
export const ETCD_DISK_BUCKETS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

export class SharedHistogram {
  private readonly counts: BigInt64Array;
  readonly bounds: number[];

  static allocate(bounds: number[]): SharedHistogramLayout {
    // bucket counts (bounds.length + 1 for +Inf), then the sum in nanoseconds, then the total count
    return { sab: new SharedArrayBuffer(8 * (bounds.length + 3)), bounds };
  }

  constructor(layout: SharedHistogramLayout) {
    this.counts = new BigInt64Array(layout.sab);
    this.bounds = layout.bounds;
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    Atomics.add(this.counts, i, 1n);
    Atomics.add(this.counts, this.bounds.length + 1, BigInt(Math.round(seconds * 1e9)));
    Atomics.add(this.counts, this.bounds.length + 2, 1n);
  }

  /** Cumulative bucket counts (Prometheus le semantics), sum in seconds, count. */
  read(): { buckets: { le: number; count: number }[]; sum: number; count: number } {
    const buckets: { le: number; count: number }[] = [];
    let acc = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      acc += Number(Atomics.load(this.counts, i));
      buckets.push({ le: i < this.bounds.length ? this.bounds[i]! : Infinity, count: acc });
    }
    return {
      buckets,
      sum: Number(Atomics.load(this.counts, this.bounds.length + 1)) / 1e9,
      count: Number(Atomics.load(this.counts, this.bounds.length + 2)),
    };
  }
}
