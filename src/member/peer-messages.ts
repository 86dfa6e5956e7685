// Our own messages on the raft transport, beside raft's: the transport carries
// any message type from APP_MESSAGE_TYPE_MIN up unchanged, and raft never sees
// them. One builder per message here, one route in routePeerMessage.

import type { EtcdError } from '../common/errors.js';
import { decodeError, encodeError } from '../common/errors.js';
import type { MessageType, Message } from '../raft/types.js';
import { APP_MESSAGE_TYPE_MIN } from '../transport/message-codec.js';

/** A lease keep-alive a follower received, for the leader: context = reqId, entries[0].data = the lease id (int64). */
const MSG_LEASE_RENEW = APP_MESSAGE_TYPE_MIN;
/** A membership change a client sent to a follower, for the leader: context = reqId, entries[0].data = the encoded MemberOp. */
const MSG_MEMBER_OP = APP_MESSAGE_TYPE_MIN + 1;
/** The leader refused a forwarded membership change: context = reqId, entries[0].data = encodeError(err). */
const MSG_MEMBER_OP_FAILED = APP_MESSAGE_TYPE_MIN + 2;
/** The leader's answer to a forwarded keep-alive: context = reqId, entries[0].data = the TTL (int64; 0 no such lease). */
const MSG_LEASE_RENEWED = APP_MESSAGE_TYPE_MIN + 3;

/** A TimeToLive a follower received, for the leader: context = reqId, entries[0].data = the lease id (int64). */
const MSG_LEASE_TTL = APP_MESSAGE_TYPE_MIN + 4;
/** The leader's answer to a forwarded TimeToLive: context = reqId, entries[0].data = TTL and granted TTL (two int64). */
const MSG_LEASE_TTL_ANSWER = APP_MESSAGE_TYPE_MIN + 5;

/** The TTL a member that no longer leads answers a forwarded keep-alive (or TimeToLive) with. */
export const NOT_LEADER_TTL = -1;

function int64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt.asIntN(64, v), true);
  return b;
}

function readInt64(b: Uint8Array): bigint | null {
  return b.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0, true) : null;
}

function appMessage(type: number, from: bigint, to: bigint, context: bigint | number, data?: Uint8Array): Message {
  return {
    type: type as MessageType, from, to, term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0,
    entries: data ? [{ index: 0, term: 0, data }] : [], context,
  };
}

export const leaseRenewMessage = (from: bigint, to: bigint, reqId: number, leaseId: bigint): Message =>
  appMessage(MSG_LEASE_RENEW, from, to, reqId, int64Bytes(leaseId));
export const leaseRenewedMessage = (from: bigint, to: bigint, reqId: number, ttl: number): Message =>
  appMessage(MSG_LEASE_RENEWED, from, to, reqId, int64Bytes(BigInt(ttl)));
export const leaseTtlMessage = (from: bigint, to: bigint, reqId: number, leaseId: bigint): Message =>
  appMessage(MSG_LEASE_TTL, from, to, reqId, int64Bytes(leaseId));
export const leaseTtlAnswerMessage = (from: bigint, to: bigint, reqId: number, ttl: number, granted: number): Message => {
  const data = new Uint8Array(16);
  data.set(int64Bytes(BigInt(ttl)), 0);
  data.set(int64Bytes(BigInt(granted)), 8);
  return appMessage(MSG_LEASE_TTL_ANSWER, from, to, reqId, data);
};
export const memberOpMessage = (from: bigint, to: bigint, reqId: number, op: Uint8Array): Message => appMessage(MSG_MEMBER_OP, from, to, reqId, op);
export const memberOpFailedMessage = (from: bigint, to: bigint, reqId: number, err: EtcdError): Message =>
  appMessage(MSG_MEMBER_OP_FAILED, from, to, reqId, encodeError(err));

/** Who handles what arrives from a peer. */
export interface PeerMessageHandlers {
  leaseRenew(from: bigint, reqId: number, leaseId: bigint): void;
  leaseRenewed(reqId: number, ttl: number): void;
  leaseTtl(from: bigint, reqId: number, leaseId: bigint): void;
  leaseTtlAnswer(reqId: number, ttl: number, granted: number): void;
  memberOp(reqId: number, from: bigint, op: Uint8Array): void;
  memberOpFailed(reqId: number, err: EtcdError): void;
  /** Raft's own messages, forwarded proposals (MsgProp) included. */
  raft(m: Message): void;
}

export function routePeerMessage(m: Message, h: PeerMessageHandlers): void {
  switch (m.type as number) {
    case MSG_LEASE_RENEW: {
      const id = m.entries[0] ? readInt64(m.entries[0].data) : null;
      if (id !== null) h.leaseRenew(m.from, Number(m.context), id);
      return;
    }
    case MSG_LEASE_RENEWED: {
      const ttl = m.entries[0] ? readInt64(m.entries[0].data) : null;
      if (ttl !== null) h.leaseRenewed(Number(m.context), Number(ttl));
      return;
    }
    case MSG_LEASE_TTL: {
      const id = m.entries[0] ? readInt64(m.entries[0].data) : null;
      if (id !== null) h.leaseTtl(m.from, Number(m.context), id);
      return;
    }
    case MSG_LEASE_TTL_ANSWER: {
      const d = m.entries[0]?.data;
      if (d && d.length === 16) h.leaseTtlAnswer(Number(m.context), Number(readInt64(d.subarray(0, 8))), Number(readInt64(d.subarray(8, 16))));
      return;
    }
    case MSG_MEMBER_OP:
      if (m.entries[0]) h.memberOp(Number(m.context), m.from, m.entries[0].data);
      return;
    case MSG_MEMBER_OP_FAILED:
      if (m.entries[0]) h.memberOpFailed(Number(m.context), decodeError(m.entries[0].data));
      return;
    default:
      h.raft(m);
  }
}
