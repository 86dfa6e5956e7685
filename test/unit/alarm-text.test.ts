// Maintenance.Status errors: an AlarmMember as Go's CompactTextString writes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alarmMemberText } from '../../src/proto/alarm-codec.js';

test('set fields as name:value and a space; zero fields left out; ids unsigned decimal', () => {
  assert.equal(alarmMemberText({ memberId: 10276657743932975437n, alarm: 1 }), 'memberID:10276657743932975437 alarm:NOSPACE ');
  assert.equal(alarmMemberText({ memberId: 0n, alarm: 2 }), 'alarm:CORRUPT ');
  assert.equal(alarmMemberText({ memberId: -1n, alarm: 0 }), 'memberID:18446744073709551615 ');
});
