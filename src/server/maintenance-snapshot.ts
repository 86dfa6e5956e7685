// Maintenance.Snapshot as etcd 3.4 serves it (etcdserver/api/v3rpc/maintenance.go):
// the backend database as a bbolt file, in 32 KiB SnapshotResponse blobs with
// remaining_bytes counting down, then one last message whose blob is the
// sha256 of everything sent (etcdctl checks it at restore). No header is set,
// as in etcd 3.4.
//
// The file is made by the one-off pool from one point-in-time view of RocksDB
// (Member.etcdDbFile, src/storage/bbolt/export.ts), then streamed with
// backpressure: the next chunk is read only when the stream's buffer has
// room, and a cancelled call stops reading. The file is removed when the call
// ends, however it ends.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { EtcdError, Errors } from '../common/errors.js';
import { tokenOf } from '../grpc/adapt.js';
import { asMaintenanceAdmin } from './auth-check.js';
import type { ServerCall, StreamHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { ProtoWriter, WIRE_LDELIM, WIRE_VARINT } from '../proto/wire.js';

/** etcd's snapshotSendBufferSize. */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;

/** SnapshotResponse { header = 1, remaining_bytes = 2 (uint64), blob = 3 (bytes) } */
function encodeSnapshotResponse(remaining: number, blob: Uint8Array): Buffer {
  const w = new ProtoWriter(blob.length + 24);
  if (remaining !== 0) { w.writeTag(2, WIRE_VARINT); w.writeVarint(remaining); }
  if (blob.length !== 0) { w.writeTag(3, WIRE_LDELIM); w.writeBytes(blob); }
  return w.finish();
}

export function snapshotStreams(member: Member): Map<string, StreamHandler> {
  const m = new Map<string, StreamHandler>();
  m.set('/etcdserverpb.Maintenance/Snapshot', (call) => {
    let started = false;
    call.onMessage(() => {
      if (started) return;
      started = true;
      // Admin only when auth is on, as etcd 3.4's Maintenance.Snapshot (IsAdminPermitted).
      const caller = { token: tokenOf(call), peerCommonName: call.peerCommonName };
      Promise.resolve(asMaintenanceAdmin(member, caller, () => sendSnapshot(member, call))).catch((err: unknown) => {
        if (err instanceof EtcdError) return call.end(err);
        member.log.warn({ err }, 'sending a database snapshot failed');
        call.end(Errors.unknown(err instanceof Error ? err.message : String(err)));
      });
    });
  });
  return m;
}

async function sendSnapshot(member: Member, call: ServerCall): Promise<void> {
  let cancelled = false;
  let wake: () => void = () => {};
  call.onCancel(() => { cancelled = true; wake(); });
  call.onDrain(() => wake());

  const { path, info } = await member.etcdDbFile();
  try {
    if (cancelled) return;
    member.log.info({ totalBytes: info.bytes, revision: info.revision }, 'sending database snapshot to client');
    const fd = fs.openSync(path, 'r');
    try {
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(SNAPSHOT_CHUNK_BYTES);
      let sent = 0;
      while (sent < info.bytes) {
        if (cancelled) return;
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, info.bytes - sent), sent);
        if (n === 0) throw new Error(`snapshot file ended at ${sent} of ${info.bytes} bytes`);
        sent += n;
        const blob = buf.subarray(0, n);
        h.update(blob);
        // write() copies the frame out (encodeSnapshotResponse allocates), so buf can be reused.
        if (!call.write(encodeSnapshotResponse(info.bytes - sent, blob))) {
          await new Promise<void>((resolve) => { wake = resolve; });
        }
      }
      if (cancelled) return;
      call.write(encodeSnapshotResponse(0, h.digest()));
      call.end();
      member.log.info({ totalBytes: info.bytes }, 'sent database snapshot to client');
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(path, { force: true });
  }
}
