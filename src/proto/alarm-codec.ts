// Maintenance.Alarm's messages (etcdserverpb.AlarmRequest / AlarmResponse).
import { ProtoWriter, WIRE_LDELIM, WIRE_VARINT, readVarintField } from './wire.js';

/** AlarmRequest.AlarmAction. */
export const enum AlarmAction { GET = 0, ACTIVATE = 1, DEACTIVATE = 2 }

export interface AlarmRequest { action: AlarmAction; memberId: bigint; alarm: number }

/** AlarmRequest { action = 1, memberID = 2 (uint64), alarm = 3 } */
export function decodeAlarmRequest(b: Uint8Array): AlarmRequest {
  return {
    action: Number(readVarintField(b, 1)) as AlarmAction,
    memberId: BigInt.asUintN(64, readVarintField(b, 2)),
    alarm: Number(readVarintField(b, 3)),
  };
}

export function encodeAlarmRequest(r: AlarmRequest): Buffer {
  const w = new ProtoWriter(32);
  if (r.action !== AlarmAction.GET) { w.writeTag(1, WIRE_VARINT); w.writeVarint(r.action); }
  if (r.memberId !== 0n) { w.writeTag(2, WIRE_VARINT); w.writeVarintBig(r.memberId); }
  if (r.alarm !== 0) { w.writeTag(3, WIRE_VARINT); w.writeVarint(r.alarm); }
  return w.finish();
}

/**
 * AlarmResponse { header = 1, alarms = 2 (AlarmMember { memberID = 1, alarm = 2 }) }.
 * etcd 3.4 leaves the header out (its applier answers a bare AlarmResponse{}).
 */
export function encodeAlarmResponse(alarms: { memberId: bigint; alarm: number }[]): Buffer {
  const w = new ProtoWriter(16 + alarms.length * 16);
  for (const a of alarms) {
    const m = new ProtoWriter(16);
    if (a.memberId !== 0n) { m.writeTag(1, WIRE_VARINT); m.writeVarintBig(a.memberId); }
    if (a.alarm !== 0) { m.writeTag(2, WIRE_VARINT); m.writeVarint(a.alarm); }
    w.writeTag(2, WIRE_LDELIM); w.writeBytes(m.finish());
  }
  return w.finish();
}

const ALARM_NAMES = ['NONE', 'NOSPACE', 'CORRUPT'];

/**
 * An AlarmMember as Go's proto.CompactTextString writes it (its String(), which
 * Maintenance.Status puts in `errors`): each set field as name:value and a space,
 * zero fields left out, e.g. "memberID:10276657743932975437 alarm:NOSPACE ".
 */
export function alarmMemberText(a: { memberId: bigint; alarm: number }): string {
  let s = '';
  if (a.memberId !== 0n) s += `memberID:${BigInt.asUintN(64, a.memberId).toString(10)} `;
  if (a.alarm !== 0) s += `alarm:${ALARM_NAMES[a.alarm] ?? String(a.alarm)} `;
  return s;
}
