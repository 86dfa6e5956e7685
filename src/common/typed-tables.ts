// Pieces shared by the tables kept in typed arrays (a shard's watchers, its
// watched keys, a stream's watch ids): growing an array, and unlinking a slot
// from a chained hash table whose chains run through a `next` array.

type IntArray = Int32Array | Uint32Array | Uint16Array | Float64Array;

/** A copy of `a` at length n (>= a.length); the new tail is `fill`. */
export function grown<T extends IntArray>(a: T, n: number, fill = 0): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

/** Removes slot s from the chain of bucket b (s must be on it). */
export function unchain(buckets: Int32Array, next: Int32Array, b: number, s: number): void {
  if (buckets[b] === s) { buckets[b] = next[s]!; return; }
  let p = buckets[b]!;
  while (next[p] !== s) p = next[p]!;
  next[p] = next[s]!;
}
