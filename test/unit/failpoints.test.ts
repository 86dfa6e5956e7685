import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAILPOINT_NAMES, FailpointError, parseFailpoints } from '../../src/common/failpoints.js';

test('failpoint specs parse; unknown names and actions are refused', () => {
  const fp = parseFailpoints('walAfterFsync=3*crash; applyBeforeCommit=sleep(200);leaseBeforeRevoke=@2 error');
  assert.deepEqual(fp.get('walAfterFsync'), { action: { kind: 'crash' }, first: 3, only: 0, hits: 0 });
  assert.deepEqual(fp.get('applyBeforeCommit'), { action: { kind: 'sleep', ms: 200 }, first: Infinity, only: 0, hits: 0 });
  assert.deepEqual(fp.get('leaseBeforeRevoke'), { action: { kind: 'error' }, first: Infinity, only: 2, hits: 0 });
  assert.throws(() => parseFailpoints('walAfterFsinc=crash'), FailpointError);
  assert.throws(() => parseFailpoints('walAfterFsync=explode'), FailpointError);
  assert.throws(() => parseFailpoints('walAfterFsync'), FailpointError);
  assert.equal(parseFailpoints('').size, 0);
  assert.ok(FAILPOINT_NAMES.length >= 15);
});
