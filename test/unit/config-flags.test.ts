import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseArgs } from '../../src/common/config.js';

test('boolean flags read as Go reads them: 1/0, t/f, true/false in three spellings', () => {
  for (const v of ['0', 'f', 'F', 'false', 'FALSE', 'False']) {
    assert.equal(parseArgs([`--pre-vote=${v}`]).config.preVote, false, v);
    assert.equal(parseArgs([`--strict-reconfig-check=${v}`]).config.strictReconfigCheck, false, v);
  }
  for (const v of ['1', 't', 'T', 'true', 'TRUE', 'True']) assert.equal(parseArgs([`--pre-vote=${v}`]).config.preVote, true, v);
  assert.equal(parseArgs(['--pre-vote']).config.preVote, true);
  assert.equal(parseArgs([]).config.preVote, true);
});

test('a boolean flag with another value is refused with Go flag\'s message', () => {
  assert.throws(() => parseArgs(['--pre-vote=no']), (err: unknown) =>
    err instanceof ConfigError && err.message === 'invalid boolean value "no" for -pre-vote: parse error');
});

test('--busy-poll is off unless turned on', () => {
  assert.equal(parseArgs([]).config.busyPoll, false);
  assert.equal(parseArgs(['--busy-poll']).config.busyPoll, true);
  assert.equal(parseArgs(['--busy-poll=false']).config.busyPoll, false);
});
