// etcd's --experimental-corrupt-check-time (etcdserver/corrupt.go
// monitorKVHash, checkHashKV): every interval the leader hashes its own store
// at its current revision, asks every other member for HashKV at that
// revision over the peer port (GET /members/hashkv), waits for a linearizable
// read and hashes again. A member answering from a newer revision or a newer
// compaction than the leader's, or the same compaction with another hash, or
// the leader's own hash changing under an unchanged revision, raises the
// CORRUPT alarm through the log, with member id 0 as etcd 3.4.23 does (which
// side is corrupt is not known). A raised CORRUPT makes the apply worker
// refuse writes (etcd's applierV3Corrupt). Followers skip their turn.
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import type { TlsSide } from '../tls/side.js';
import { askPeerHashKV, type PeerHashKV } from './corrupt-check.js';
import type { HashResult } from './maintenance-jobs.js';

export interface CorruptMonitorDeps {
  memberId: bigint;
  intervalMs: number;
  /** etcd's ReqTimeout, for each peer request and the read barrier. */
  timeoutMs: number;
  peerTls: TlsSide | null;
  log: Logger;
  isLeader(): boolean;
  /** Every other member with its peer URLs, as the membership has them now. */
  peers(): { id: bigint; urls: string[] }[];
  hashKV(revision: number): Promise<HashResult>;
  linearizableBarrier(): Promise<void>;
  /** Proposes Alarm ACTIVATE CORRUPT for member 0. */
  raiseCorrupt(): Promise<unknown>;
}

export class CorruptMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(private readonly d: CorruptMonitorDeps) {}

  start(): void {
    this.d.log.info({ 'local-member-id': formatId(this.d.memberId), interval: `${this.d.intervalMs}ms` }, 'enabled corruption checking');
    this.timer = setInterval(() => this.tick(), this.d.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    // One pass at a time: a pass slower than the interval skips the next tick rather than piling up.
    if (this.running || !this.d.isLeader()) return;
    this.running = true;
    this.check().catch((err: unknown) => this.d.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'failed to check hash KV'))
      .finally(() => { this.running = false; });
  }

  /** One checkHashKV pass; resolves with the members found mismatching (the leader itself included). */
  async check(): Promise<bigint[]> {
    const { d } = this;
    const first = await d.hashKV(0);
    const rev = first.hashRevision || first.currentRevision;
    const answers: { id: bigint; resp: PeerHashKV }[] = [];
    for (const p of d.peers()) {
      if (p.urls.length === 0) continue;
      const { got } = await askPeerHashKV(p.urls, rev, d);
      if (got) answers.push({ id: p.id, resp: got });
    }
    await withTimeout(d.linearizableBarrier(), d.timeoutMs);
    const second = await d.hashKV(0);
    const rev2 = second.hashRevision || second.currentRevision;
    const [h, crev, h2, crev2] = [first.hash, first.compactRevision, second.hash, second.compactRevision];

    const mismatched: bigint[] = [];
    if (h2 !== h && rev2 === rev && crev === crev2) {
      d.log.warn({ 'revision-1': rev, 'compact-revision-1': crev, 'hash-1': h, 'revision-2': rev2, 'compact-revision-2': crev2, 'hash-2': h2 }, 'found hash mismatch');
      mismatched.push(d.memberId);
    }
    for (const { id, resp } of answers) {
      const peer = formatId(id);
      if (resp.revision > rev2) {
        d.log.warn({ 'leader-revision': rev2, 'follower-revision': resp.revision, 'follower-peer-id': peer }, 'revision from follower must be less than or equal to leader\'s');
        mismatched.push(id);
      }
      if (resp.compactRevision > crev2) {
        d.log.warn({ 'leader-compact-revision': crev2, 'follower-compact-revision': resp.compactRevision, 'follower-peer-id': peer },
          'compact revision from follower must be less than or equal to leader\'s');
        mismatched.push(id);
      }
      if (resp.compactRevision === crev && resp.hash !== h) {
        d.log.warn({ 'leader-compact-revision': crev2, 'leader-hash': h, 'follower-compact-revision': resp.compactRevision, 'follower-hash': resp.hash, 'follower-peer-id': peer },
          'same compact revision then hashes must match');
        mismatched.push(id);
      }
    }
    d.log.info({ 'number-of-peers-checked': answers.length }, 'finished peer corruption check');
    // etcd raises one alarm per pass, whoever mismatched.
    if (mismatched.length > 0) await d.raiseCorrupt();
    return mismatched;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('context deadline exceeded')), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
