// The peer transport's connection handshake.
//
// A connection is opened by the sender of raft messages and carries them one way:
//
//   dialer -> listener:  PREFACE (8 bytes "etsdraft")
//                        frame(hello: u16 version, u16 0, u64 clusterId, u64 fromId, u64 toId)
//   listener -> dialer:  frame(ack: u16 version, u8 status, u8 0, u64 clusterId, u64 memberId)
//   dialer -> listener:  frame(message) ...      (src/transport/message-codec.ts)
//
// A listener answers a hello it refuses (cluster ID mismatch, unknown version, not
// the member the dialer wanted, a removed member) with the status and closes.
// The fixed preface lets a shared port tell raft connections from HTTP.
// Integers are little-endian, like the frames and the message codec.

import { TransportDecodeError } from './message-codec.js';

export const PREFACE = Buffer.from('etsdraft', 'latin1');
export const PROTOCOL_VERSION = 1;

export const enum HandshakeStatus {
  Ok = 0,
  ClusterIdMismatch = 1,
  UnsupportedVersion = 2,
  WrongMember = 3,
  RemovedMember = 4,
}

export const HANDSHAKE_STATUS_TEXT: Record<number, string> = {
  [HandshakeStatus.Ok]: 'ok',
  [HandshakeStatus.ClusterIdMismatch]: 'cluster ID mismatch',
  [HandshakeStatus.UnsupportedVersion]: 'unsupported protocol version',
  [HandshakeStatus.WrongMember]: 'member ID mismatch',
  [HandshakeStatus.RemovedMember]: 'the member has been permanently removed from the cluster',
};

export interface Hello {
  version: number;
  clusterId: bigint;
  fromId: bigint;
  /** The member the dialer meant to reach. */
  toId: bigint;
}

export interface Ack {
  version: number;
  status: HandshakeStatus;
  clusterId: bigint;
  memberId: bigint;
}

const HELLO_BYTES = 2 + 2 + 8 * 3;
const ACK_BYTES = 2 + 1 + 1 + 8 * 2;

export function encodeHello(h: Hello): Buffer {
  const b = Buffer.alloc(HELLO_BYTES);
  b.writeUInt16LE(h.version, 0);
  b.writeBigUInt64LE(h.clusterId, 4);
  b.writeBigUInt64LE(h.fromId, 12);
  b.writeBigUInt64LE(h.toId, 20);
  return b;
}

export function decodeHello(b: Uint8Array): Hello {
  if (b.byteLength !== HELLO_BYTES) throw new TransportDecodeError(`handshake hello of ${b.byteLength} bytes, want ${HELLO_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    version: dv.getUint16(0, true),
    clusterId: dv.getBigUint64(4, true),
    fromId: dv.getBigUint64(12, true),
    toId: dv.getBigUint64(20, true),
  };
}

export function encodeAck(a: Ack): Buffer {
  const b = Buffer.alloc(ACK_BYTES);
  b.writeUInt16LE(a.version, 0);
  b.writeUInt8(a.status, 2);
  b.writeBigUInt64LE(a.clusterId, 4);
  b.writeBigUInt64LE(a.memberId, 12);
  return b;
}

export function decodeAck(b: Uint8Array): Ack {
  if (b.byteLength !== ACK_BYTES) throw new TransportDecodeError(`handshake ack of ${b.byteLength} bytes, want ${ACK_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    version: dv.getUint16(0, true),
    status: dv.getUint8(2) as HandshakeStatus,
    clusterId: dv.getBigUint64(4, true),
    memberId: dv.getBigUint64(12, true),
  };
}
