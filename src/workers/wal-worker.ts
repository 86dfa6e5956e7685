// The WAL worker owns the raft log files: it drains the ring, appends every
// record, issues ONE fdatasync per batch (group commit), and only then tells
// the main thread which index is durable.

import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { parentPort, workerData } from 'node:worker_threads';
import { Ring } from './ring/ring.js';
import { DURABLE_NOTICE_BYTES, WAL_BARRIER, WAL_DIRECT, WAL_LAZY, WAL_RELEASE, writeDurableNotice } from './protocol/wal-ring.js';
import { writeEntry } from './protocol/apply-ring.js';
import { OP_HEADER_BYTES } from './protocol/header.js';
import { SharedHistogram, type SharedHistogramLayout } from '../common/shared-histogram.js';
import { Wal } from '../storage/wal/wal.js';
import { RecordType, type WalRecord } from '../storage/wal/record.js';
import { recoverLog, type RecoveredLog } from '../storage/wal/recover.js';

export interface WalWorkerData {
  walDir: string;
  segmentBytes: number;
  inRing: SharedArrayBuffer;
  outRing: SharedArrayBuffer;
  /** To the apply worker: entries flagged WAL_DIRECT, once synced (apply-ring.ts layout). */
  directRing: SharedArrayBuffer;
  /** The apply worker's doorbell (it waits on its main ring and this one at once). */
  applyDoorbell: SharedArrayBuffer;
  /** etcd_disk_wal_fsync_duration_seconds */
  fsyncHistogram: SharedHistogramLayout;
}

export interface WalReady { type: 'ready'; log: RecoveredLog; repair: string | null }


/** Durable notices back: f64 index of the last durable record. */
function main(): void {
  const d = workerData as WalWorkerData;
  const { wal, records, repair } = Wal.open(d.walDir, { segmentBytes: d.segmentBytes });
  const ready: WalReady = {
    type: 'ready',
    log: recoverLog(records),
    repair: repair ? `${repair.segment}@${repair.offset}: ${repair.reason}` : null,
  };
  parentPort!.postMessage(ready);
  const inRing = new Ring(d.inRing);
  const outRing = new Ring(d.outRing);
  const directRing = new Ring(d.directRing, { doorbell: d.applyDoorbell });
  const direct: WalRecord[] = [];
  const notice = Buffer.allocUnsafe(DURABLE_NOTICE_BYTES);
  const fsyncHist = new SharedHistogram(d.fsyncHistogram);
  // The deliberate bug walAckBeforeFsync (decided once, so it costs nothing per batch): batches
  // are acknowledged at once but buffered, and written and fsync'd every HOLD_MS (a periodic
  // flush), so a crash loses up to HOLD_MS of acknowledged records.
  const ackFirst = FAILPOINTS_ARMED && failpoint('walAckBeforeFsync');
  const HOLD_MS = 300;
  let held: WalRecord[] = [];
  let heldSince = 0;
  // The newest HardState must outlive the segment that held it.
  let hardState: WalRecord | null = null;
  for (const r of records) if (r.type === RecordType.HardState) hardState = r;

  for (;;) {
    if (inRing.isEmpty()) {
      if (ackFirst && held.length > 0 && performance.now() - heldSince >= HOLD_MS) { wal.append(held.splice(0)); wal.sync(); }
      inRing.waitReadable(ackFirst ? 50 : 1000);
      continue;
    }
    const batch: WalRecord[] = [];
    let last = -1;
    let release = 0;
    let needSync = false;
    let barrier = -1;
    let entries = 0;
    inRing.drainInPlace((area, at, len) => {
      if (len < OP_HEADER_BYTES) throw new Error(`WAL ring record of ${len} bytes is shorter than its header`);
      const type = area[at]!;
      const index = area.readDoubleLE(at + 1);
      if (type === WAL_RELEASE) { release = Math.max(release, index); return; }
      if (type === WAL_BARRIER) { barrier = Math.max(barrier, index); needSync = true; return; }
      const lazy = (type & WAL_LAZY) !== 0;
      // One copy of the payload, no view per record: it outlives the drain (direct entries, held records).
      const data = Buffer.allocUnsafe(len - OP_HEADER_BYTES);
      area.copy(data, 0, at + OP_HEADER_BYTES, at + len);
      const rec: WalRecord = { type: type & ~(WAL_LAZY | WAL_DIRECT), index, term: area.readDoubleLE(at + 9), data };
      batch.push(rec);
      if ((type & WAL_DIRECT) !== 0) direct.push(rec);
      if (!lazy) needSync = true;
      if (rec.type === RecordType.HardState) hardState = rec;
      else {
        entries++;
        if (index > last) last = index;
      }
    });
    let toWrite = batch;
    if (ackFirst) {
      if (held.length === 0) heldSince = performance.now();
      held.push(...batch);
      toWrite = performance.now() - heldSince >= HOLD_MS ? held.splice(0) : [];
    }
    if (toWrite.length > 0) wal.append(toWrite);
    if (needSync) {
      const t0 = performance.now();
      if (FAILPOINTS_ARMED && failpoint('walBeforeFsync')) throw new Error('failpoint walBeforeFsync: injected fsync error');
      wal.sync();
      if (FAILPOINTS_ARMED && failpoint('walAfterFsync')) throw new Error('failpoint walAfterFsync: injected error');
      fsyncHist.observe((performance.now() - t0) / 1000);
      writeDurableNotice(notice, last, barrier);
      // Every entry went direct: the main thread reads this notice before it reads their
      // answers from the apply worker, so it need not be woken for it (one wake per commit fewer).
      // Otherwise it is woken: an entry it forwards itself may be what the apply worker waits for.
      const quiet = direct.length > 0 && direct.length === entries;
      while (!(quiet ? outRing.tryWriteQuiet(notice) : outRing.tryWrite(notice))) outRing.waitWritable(100);
      // After the notice: the main thread learns these are durable no later than it hears them applied.
      if (direct.length > 0) {
        directRing.cork();
        for (const r of direct) while (!writeEntry(directRing, r.index, r.term, r.data)) directRing.waitWritable(100);
        directRing.uncork();
        direct.length = 0;
      }
    }
    if (release > 0) {
      const before = wal.segmentNames().length;
      wal.releaseBefore(release);
      if (hardState && wal.segmentNames().length < before) {
        wal.append([hardState]);
        wal.sync();
      }
    }
  }
}

try {
  main();
} catch (err) {
  console.error('wal worker failed:', err);
  process.exit(70);
}
