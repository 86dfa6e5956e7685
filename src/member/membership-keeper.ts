// The membership as the log decides it, on the main thread: applies committed
// conf changes and published member attributes (to raft's configuration, to
// the membership, to the transport's peers), publishes our own attributes
// once there is a leader (etcd's publish), and stops the member once its own
// removal applies. The resulting membership goes to the apply worker as a
// Members entry, stored with the applied index.

import type { Config } from '../common/config.js';
import type { Logger } from '../common/log.js';
import { FAILPOINTS_ARMED, failpoint } from '../common/failpoints.js';
import { formatId } from '../common/ids.js';
import type { RaftNode } from '../raft/node.js';
import { decodeConfChange } from '../raft/confchange.js';
import { ConfChangeType, NotLeaderError, ProposalDroppedError, type Entry, type Message } from '../raft/types.js';
import { EntryKind, ENTRY_HEADER_BYTES, encodeEntryData } from '../workers/protocol/entry.js';
import { Membership, decodeConfChangeContext, decodeMemberAttributes, encodeMemberAttributes, type MemberRecord } from './membership.js';
import { ETCD_API_VERSION } from '../common/version.js';

/** The cluster version etcd reports (major.minor of the API version). */
const ETCD_CLUSTER_VERSION = ETCD_API_VERSION.split('.').slice(0, 2).join('.');

function sameUrls(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((u, i) => u === b[i]);
}
import type { RoleView } from './read-path.js';

const CONF_CHANGE_NAMES: Record<ConfChangeType, string> = {
  [ConfChangeType.AddNode]: 'AddNode', [ConfChangeType.RemoveNode]: 'RemoveNode',
  [ConfChangeType.AddLearnerNode]: 'AddLearnerNode', [ConfChangeType.UpdateNode]: 'UpdateNode',
};

/** The transport as the membership changes it. */
export interface PeerSet {
  addPeer(id: bigint, url: string): void;
  removePeer(id: bigint): void;
  send(msgs: Message[]): void;
}

export interface KeeperHooks {
  /** A change a client waits for has applied (reqId from the change's context). */
  changeApplied(reqId: number, member: MemberRecord): void;
  /** Our own removal applied, or a peer refused us as removed: stop the member. */
  removed(): void;
  /** Proposes entry data through the raft loop (appended on the leader, forwarded from a follower). */
  propose(data: Uint8Array): number | null;
}

export class MembershipKeeper implements RoleView {
  soleVoter = true;
  learner = false;
  private publishTimer: NodeJS.Timeout | null = null;
  private removedSelf = false;
  private isPublished = false;
  private resolvePublished!: () => void;
  /**
   * Resolves once this run's publish of our name and client URLs has applied:
   * etcd serves clients only from then on (ReadyNotify), so a member of a fresh
   * cluster never answers "no leader" or lists itself without client URLs.
   */
  readonly published = new Promise<void>((resolve) => { this.resolvePublished = resolve; });

  constructor(
    private membership: Membership,
    private readonly memberId: bigint,
    private readonly raft: RaftNode,
    private readonly peers: PeerSet,
    private readonly cfg: Config,
    private readonly log: Logger,
    private readonly hooks: KeeperHooks,
  ) {
    this.noteConf();
  }

  get current(): Membership { return this.membership; }

  /** A snapshot install brought another membership: adopt it and its peers. */
  replace(ms: Membership): void {
    for (const m of ms.list()) if (m.id !== this.memberId && m.peerUrls[0]) this.peers.addPeer(m.id, m.peerUrls[0]);
    for (const id of ms.removedIds()) if (id !== this.memberId) this.peers.removePeer(id);
    this.membership = ms;
    this.noteConf();
  }

  /** The data of a committed entry for the apply worker: conf changes and attributes become Members entries. */
  applyData(e: Entry, isConfChange: boolean): Uint8Array {
    if (isConfChange) return this.applyConfChange(e);
    if (e.data[0] === EntryKind.MemberAttrs) return this.applyAttributes(e);
    return e.data;
  }

  /** A committed ConfChange entry: raft's membership, ours, the transport, and the client waiting for it. */
  private applyConfChange(e: Entry): Buffer {
    if (FAILPOINTS_ARMED && failpoint('confChangeBeforeApply')) throw new Error('failpoint confChangeBeforeApply: injected error');
    const cc = decodeConfChange(e.data);
    this.raft.applyConfChange(cc);
    let ctx = null;
    try {
      ctx = cc.context ? decodeConfChangeContext(cc.context) : null;
    } catch (err) {
      this.log.error({ err, index: e.index }, 'conf change entry with an unreadable context');
    }
    this.membership.applyConfChange(cc, ctx);
    this.noteConf();
    this.log.info({ index: e.index, type: CONF_CHANGE_NAMES[cc.type], member: formatId(cc.nodeId), members: this.membership.size }, 'applied membership change');
    if (cc.nodeId !== this.memberId) {
      const rec = this.membership.get(cc.nodeId);
      if (cc.type === ConfChangeType.RemoveNode) this.peers.removePeer(cc.nodeId);
      else if (rec && rec.peerUrls[0]) this.peers.addPeer(cc.nodeId, rec.peerUrls[0]);
    }
    if (ctx) this.hooks.changeApplied(ctx.reqId, this.membership.get(cc.nodeId) ?? ctx.member);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.memberId) this.onRemovedSelf();
    return encodeEntryData(EntryKind.Members, 0, this.membership.toBytes());
  }

  /** A member published its name and client URLs. */
  private applyAttributes(e: Entry): Buffer {
    try {
      const a = decodeMemberAttributes(e.data.subarray(ENTRY_HEADER_BYTES));
      this.membership.setAttributes(a.id, a.name, a.clientUrls);
      if (a.id === this.memberId && a.name === this.cfg.name && sameUrls(a.clientUrls, this.cfg.advertiseClientUrls)) this.markPublished(e.index);
    } catch (err) {
      this.log.error({ err, index: e.index }, 'member attributes entry unreadable');
    }
    return encodeEntryData(EntryKind.Members, 0, this.membership.toBytes());
  }

  /** etcd stops a member once its own removal is applied; its data dir then refuses to start. */
  onRemovedSelf(): void {
    if (this.removedSelf) return;
    this.removedSelf = true;
    this.log.warn({ member: formatId(this.memberId) }, 'the member has been permanently removed from the cluster');
    this.hooks.removed();
  }

  startPublishing(): void {
    this.publishTimer = setInterval(() => this.publish(), Math.max(500, this.cfg.electionTimeoutMs / 2));
    this.publishTimer.unref();
  }

  /** A leader appeared: publish now rather than at the next tick of the timer. */
  leaderKnown(): void {
    if (this.publishTimer) setImmediate(() => this.publish());
  }

  stop(): void {
    if (this.publishTimer) clearInterval(this.publishTimer);
    this.publishTimer = null;
  }

  /**
   * etcd's publish: a member puts its name and client URLs into the membership
   * through raft once it has a leader. Fire and forget; retried by the timer
   * until the membership shows them.
   */
  private publish(): void {
    if (this.isPublished) return this.stop();
    if (!this.membership.get(this.memberId) || this.raft.lead === 0n || this.publishTimer === null) return;
    const urls = this.cfg.advertiseClientUrls;
    const body = encodeMemberAttributes({ id: this.memberId, name: this.cfg.name, clientUrls: urls });
    const data = encodeEntryData(EntryKind.MemberAttrs, 0, body);
    try {
      this.hooks.propose(data);
    } catch (err) {
      // No leader, lost the lead or a transfer is under way: the timer publishes again.
      if (!(err instanceof NotLeaderError || err instanceof ProposalDroppedError)) throw err;
      this.log.debug({ err }, 'publishing member attributes deferred');
    }
  }

  private markPublished(index: number): void {
    if (this.isPublished) return;
    this.isPublished = true;
    this.stop();
    // etcd's own wording: operators' alerts and etcd's e2e framework look for these lines.
    this.log.info({ 'local-member-id': formatId(this.memberId), 'local-member-attributes': { name: this.cfg.name, clientURLs: this.cfg.advertiseClientUrls }, index },
      'published local member to cluster through raft');
    this.log.info({ 'cluster-version': ETCD_CLUSTER_VERSION }, `enabled capabilities for version ${ETCD_CLUSTER_VERSION}`);
    this.resolvePublished();
  }

  /** Caches what the configuration says about us (after boot and every conf change). */
  private noteConf(): void {
    const c = this.raft.conf();
    this.soleVoter = c.voters.length === 1 && c.voters[0] === this.memberId;
    this.learner = this.membership.get(this.memberId)?.isLearner === true;
  }
}
