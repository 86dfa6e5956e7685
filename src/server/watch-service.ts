import { decodeWatchRequest, encodeWatchResponse, FILTER_NODELETE, FILTER_NOPUT, type WatchCreateRequest } from '../proto/watch-codec.js';
import { isFromKey } from '../storage/mvcc/keys.js';
import { ShardOp } from '../workers/protocol/shard-ring.js';
import { opHeader } from '../workers/protocol/header.js';
import { ProtoDecodeError } from '../proto/wire.js';
import { EtcdError, Errors, GrpcCode } from '../common/errors.js';
import type { AuthInfo } from '../auth/types.js';
import { authInfo } from './auth-check.js';
import type { Member, StreamSink } from '../member/member.js';
import type { BidiStream, StreamHandler } from '../grpc/stream.js';
import { WatchIdSet } from './watch-ids.js';

/** grpc-go's codes.Code String() for the codes a refused watch names. */
const GRPC_CODE_NAMES: Partial<Record<number, string>> = {
  [GrpcCode.INVALID_ARGUMENT]: 'InvalidArgument', [GrpcCode.PERMISSION_DENIED]: 'PermissionDenied', [GrpcCode.UNAUTHENTICATED]: 'Unauthenticated',
};

const ERR_EMPTY_RANGE = 'mvcc: watcher range is empty';
const ERR_DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';

/** etcd's Watch service: the per-stream part on the main thread; matching and history live in the shards. */
export function watchHandlers(member: Member): Map<string, StreamHandler> {
  return new Map([['/etcdserverpb.Watch/Watch', (stream: BidiStream) => { new WatchStream(member, stream); }]]);
}

/** Serves one Watch stream; also used in-process by the lock and election services. */
export class WatchStream implements StreamSink {
  private readonly id: number;
  /** The open watch ids; the shard holding one is member.shardOf(stream, id). */
  private readonly ids = new WatchIdSet();
  private nextAuto = 0;
  private paused = false;
  private closed = false;
  private nextToken = 1;
  private progress = new Map<number, { waiting: number; rev: number }>();

  constructor(private readonly member: Member, private readonly stream: BidiStream) {
    this.id = member.openStream(this);
    stream.onMessage((msg) => this.onRequest(msg));
    // As etcd 3.4's watch server: a half-close ends only the receiving side (recvLoop returns
    // nil on io.EOF); events flow until the client cancels or the connection goes.
    stream.onCancel(() => this.close());
    stream.onDrain(() => this.setPaused(false));
  }

  private header(revision: number) {
    return { clusterId: this.member.clusterId, memberId: this.member.memberId, revision, raftTerm: this.member.raftTerm };
  }

  private send(body: Buffer): void {
    if (this.closed) return;
    if (!this.stream.write(body)) this.setPaused(true);
  }

  private onRequest(msg: Buffer): void {
    let req;
    try {
      req = decodeWatchRequest(msg);
    } catch (err) {
      if (!(err instanceof ProtoDecodeError)) throw err;
      this.stream.end(Errors.malformed(err.message));
      this.close();
      return;
    }
    switch (req.kind) {
      case 'create': return this.create(req.create);
      case 'cancel': return this.cancel(req.watchId);
      case 'progress': return this.requestProgress();
      case 'none': return; // etcd ignores requests it does not know
    }
  }

  /** etcd's isWatchPermitted: the caller may read the watched range, or the create is refused. */
  private create(c: WatchCreateRequest): void {
    let ai;
    try {
      ai = authInfo(this.member, this.stream);
      if (!(ai instanceof Promise)) this.checkWatch(c, ai);
    } catch (err) {
      return this.refuse(err);
    }
    if (!(ai instanceof Promise)) return this.createChecked(c);
    ai.then((a) => { this.checkWatch(c, a); this.createChecked(c); }).catch((err: unknown) => this.refuse(err));
  }

  private checkWatch(c: WatchCreateRequest, ai: AuthInfo | undefined): void {
    // etcd's recvLoop normalises first: an empty key is "\0", and a range end of "\0" (from key) becomes
    // empty, so the check of a from-key watch covers its first key only (etcd 3.4 does the same).
    const key = c.key.length === 0 ? Buffer.from([0]) : c.key;
    const end = c.rangeEnd.length === 1 && c.rangeEnd[0] === 0 ? Buffer.alloc(0) : c.rangeEnd;
    this.member.auth.checkRange(ai, key, end);
  }

  /** etcd answers a refused create with a canceled response whose reason is the gRPC error's text. */
  private refuse(err: unknown): void {
    if (!(err instanceof EtcdError)) throw err;
    const known = [Errors.invalidAuthToken(), Errors.authOldRevision(), Errors.userEmpty()].find((e) => e.message === err.message);
    const e = known ?? Errors.permissionDenied();
    this.send(encodeWatchResponse({
      header: this.header(this.member.revision), watchId: -1, created: true, canceled: true,
      cancelReason: `rpc error: code = ${GRPC_CODE_NAMES[e.code]} desc = ${e.message}`,
    }));
  }

  private createChecked(c: WatchCreateRequest): void {
    if (this.closed) return;
    const key = c.key.length === 0 ? Buffer.from([0]) : c.key;
    const end = c.rangeEnd.length === 0 ? null : isFromKey(c.rangeEnd) ? Buffer.alloc(0) : c.rangeEnd;
    const wsrev = this.member.revision;
    const fail = (reason: string) =>
      this.send(encodeWatchResponse({ header: this.header(wsrev), watchId: -1, created: true, canceled: true, cancelReason: reason }));
    if (end && end.length > 0 && Buffer.compare(key, end) >= 0) return fail(ERR_EMPTY_RANGE);
    let watchId = c.watchId;
    if (watchId === 0) {
      while (this.ids.has(this.nextAuto)) this.nextAuto++;
      watchId = this.nextAuto++;
    } else if (this.ids.has(watchId)) {
      return fail(ERR_DUPLICATE_ID);
    }
    const minRev = c.startRevision === 0 ? wsrev + 1 : Math.max(1, c.startRevision);
    const shard = this.member.shardOf(this.id, watchId);
    this.ids.add(watchId);
    this.member.addWatchers(shard, 1);
    this.member.sendShard(shard, [encodeCreate(this.id, watchId, minRev, c, key, end)]);
    this.send(encodeWatchResponse({ header: this.header(wsrev), watchId, created: true }));
  }

  private cancel(watchId: number): void {
    if (!this.ids.delete(watchId)) return;
    const shard = this.member.shardOf(this.id, watchId);
    this.member.addWatchers(shard, -1);
    this.member.sendShard(shard, [opHeader(ShardOp.WatchCancel, this.id, watchId)]);
    this.send(encodeWatchResponse({ header: this.header(this.member.revision), watchId, canceled: true }));
  }

  /** Answered once every shard has sent what it had for this stream. */
  private requestProgress(): void {
    const token = this.nextToken++;
    this.progress.set(token, { waiting: this.member.shardCount, rev: Number.MAX_SAFE_INTEGER });
    for (let s = 0; s < this.member.shardCount; s++) this.member.sendShard(s, [opHeader(ShardOp.Progress, this.id, token)]);
  }

  onProgress(token: number, rev: number): void {
    const p = this.progress.get(token);
    if (!p) return;
    p.rev = Math.min(p.rev, rev);
    if (--p.waiting > 0) return;
    this.progress.delete(token);
    this.send(encodeWatchResponse({ header: this.header(p.rev), watchId: -1 }));
  }

  onWatchData(watchId: number, body: Buffer): void {
    // Events of a watcher cancelled meanwhile are dropped: after its cancel response, nothing more.
    if (this.ids.has(watchId)) this.send(body);
  }

  private setPaused(paused: boolean): void {
    if (this.paused === paused || this.closed) return;
    this.paused = paused;
    const o = paused ? ShardOp.StreamPause : ShardOp.StreamResume;
    for (const s of this.shardsUsed().keys()) this.member.sendShard(s, [opHeader(o, this.id, 0)]);
  }

  /** Shard -> how many of this stream's watchers it holds. */
  private shardsUsed(): Map<number, number> {
    const perShard = new Map<number, number>();
    this.ids.forEach((id) => {
      const s = this.member.shardOf(this.id, id);
      perShard.set(s, (perShard.get(s) ?? 0) + 1);
    });
    return perShard;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [s, n] of this.shardsUsed()) {
      this.member.sendShard(s, [opHeader(ShardOp.StreamClose, this.id, 0)]);
      this.member.addWatchers(s, -n);
    }
    this.ids.clear();
    this.member.closeStream(this.id);
    this.stream.end();
  }
}


/** The shard's WatchCreate record (see decodeWatchCreate in shard-worker.ts). */
function encodeCreate(streamId: number, watchId: number, minRev: number, c: WatchCreateRequest, key: Buffer, end: Buffer | null): Buffer {
  const endBytes = end ?? Buffer.alloc(0);
  const b = Buffer.allocUnsafe(35 + key.length + endBytes.length);
  b[0] = ShardOp.WatchCreate;
  b.writeDoubleLE(streamId, 1);
  b.writeDoubleLE(watchId, 9);
  b.writeDoubleLE(minRev, 17);
  b[25] = (c.prevKv ? 1 : 0) | (c.fragment ? 2 : 0) | (c.progressNotify ? 4 : 0) |
    (c.filters.includes(FILTER_NOPUT) ? 8 : 0) | (c.filters.includes(FILTER_NODELETE) ? 16 : 0);
  b[26] = end === null ? 0 : end.length === 0 ? 1 : 2;
  b.writeUInt32LE(key.length, 27);
  key.copy(b, 31);
  b.writeUInt32LE(endBytes.length, 31 + key.length);
  endBytes.copy(b, 35 + key.length);
  return b;
}
