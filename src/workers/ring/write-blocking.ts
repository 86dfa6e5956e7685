import type { Ring } from './ring.js';

/** Writes parts as one record, blocking (worker side only) while the ring is full. */
export function writeBlocking(ring: Ring, parts: Uint8Array[]): void {
  while (!ring.tryWriteParts(parts)) ring.waitWritable(100);
}
