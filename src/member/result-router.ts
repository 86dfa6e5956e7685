// The only way back up: records the apply worker and the shards send to the
// main thread, each handed to the room that owns it (requests, watch streams,
// the lessor, the snapshot coordinator, the applied index).

import { EtcdError, type GrpcCode } from '../common/errors.js';
import type { Ring } from '../workers/ring/ring.js';
import type { BusyPoll } from './busy-poll.js';
import {
  ResultType, decodeResult, decodeSnapshotInstalled, readResultAt, type AuthNotice, type InPlaceResults, type SnapshotInstalled,
} from '../workers/protocol/result-ring.js';

export interface ResultHandlers {
  applied(index: number, synced: boolean): void;
  /** A request's answer in pieces (`last` ends it) or its error. */
  answer(reqId: number, body: Buffer, last: boolean): void;
  error(reqId: number, err: EtcdError): void;
  watchData(streamId: number, watchId: number, body: Buffer, last: boolean): void;
  progress(streamId: number, token: number, rev: number): void;
  lease(granted: boolean, id: bigint, ttl: number): void;
  snapshotInstalled(r: SnapshotInstalled): void;
  /** The auth state changed (or a token was minted); comes before the Applied record of its entry. */
  auth(n: AuthNotice): void;
  /** A chunk of records was handed out (what they set off runs in this turn's microtasks). */
  drained(): void;
}

/** `installPieces`: the pieces of a snapshot-install answer so far, per ring (one install runs at a time). */
export function routeResult(view: Uint8Array, h: ResultHandlers, installPieces: Buffer[]): void {
  const r = decodeResult(view);
  switch (r.type) {
    case ResultType.Applied: return h.applied(r.index, r.synced);
    case ResultType.Ok: return h.answer(r.reqId, r.body, true);
    case ResultType.OkPart: return h.answer(r.reqId, r.body, false);
    case ResultType.Error: return h.error(r.reqId, new EtcdError(r.code as GrpcCode, r.message));
    case ResultType.WatchData: return h.watchData(r.streamId, r.watchId, r.body, true);
    case ResultType.WatchPart: return h.watchData(r.streamId, r.watchId, r.body, false);
    case ResultType.Progress: return h.progress(r.streamId, r.token, r.rev);
    case ResultType.Lease: return h.lease(r.granted, r.id, r.ttl);
    case ResultType.Auth: return h.auth(r.notice);
    case ResultType.SnapshotInstalledPart:
      installPieces.push(r.piece);
      return;
    case ResultType.SnapshotInstalled:
      installPieces.push(r.piece);
      return h.snapshotInstalled(decodeSnapshotInstalled(installPieces.splice(0)));
  }
}

/** Results answered per event-loop turn before incoming requests get their turn. */
const RESULTS_PER_TURN = 128;

/** Drains a result ring for as long as the member runs; `before` runs ahead of each chunk. */
export function startResultLoop(ring: Ring, h: ResultHandlers, poll: BusyPoll, running: () => boolean, onFatal: (err: unknown) => void, before?: () => void): void {
  const installPieces: Buffer[] = [];
  // Answers, applied notices and watch data are read in place (the common records).
  const hot: InPlaceResults = {
    answer: (reqId, body) => h.answer(reqId, body, true),
    applied: (index, synced) => h.applied(index, synced),
    watchData: (streamId, watchId, body) => h.watchData(streamId, watchId, body, true),
  };
  poll.watch(ring);
  const loop = async () => {
    while (running()) {
      // Before the first record, not before the drain: what was written before a record is visible once it is.
      let first = true;
      const route = (area: Buffer, at: number, len: number) => {
        if (first && before) { first = false; before(); }
        if (!readResultAt(area, at, len, hot)) routeResult(area.subarray(at, at + len), h, installPieces);
      };
      // A bounded chunk, then a turn of the event loop: answering a thousand
      // results in one go would hold back every incoming request meanwhile,
      // and the WAL and apply workers would idle until the burst is over.
      const n = ring.drainInPlace(route, RESULTS_PER_TURN);
      if (n > 0) h.drained();
      if (n === RESULTS_PER_TURN || poll.shouldPoll()) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await ring.waitReadableAsync(1000);
    }
  };
  loop().catch(onFatal);
}
