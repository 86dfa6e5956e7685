// The main thread's table of requests waiting for a worker's answer
// (member/requests.ts): answers reach the request with that id and no other,
// answers in pieces are joined, errors reject. (The timeout sweep needs a clock
// past REQUEST_TIMEOUT_MS: the integration suites cover it.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestTable } from '../../src/member/requests.js';
import { StageHistograms } from '../../src/member/stages.js';
import { StageTracker, newClock } from '../../src/member/stage-tracker.js';
import { EtcdError, Errors } from '../../src/common/errors.js';

function table(maxPending = 100): RequestTable {
  return new RequestTable(1n, maxPending, new StageTracker(new StageHistograms()), () => {});
}

function wait(t: RequestTable, tReceived = performance.now()): { reqId: number; result: Promise<Buffer> } {
  const reqId = t.admit();
  const result = new Promise<Buffer>((resolve, reject) => t.add(reqId, newClock('Put', tReceived), resolve, reject));
  return { reqId, result };
}

test('an answer reaches the request with its id, and only once', async () => {
  const t = table();
  const a = wait(t);
  const b = wait(t);
  assert.notEqual(a.reqId, b.reqId);
  t.settle(b.reqId, { ok: true, body: Buffer.from('b') });
  t.settle(a.reqId, { ok: true, body: Buffer.from('a') });
  t.settle(a.reqId, { ok: true, body: Buffer.from('again') });
  assert.equal((await a.result).toString(), 'a');
  assert.equal((await b.result).toString(), 'b');
  assert.equal(t.size, 0);
});

test('an id from elsewhere that shares a waiting request\'s low bits answers nobody', async () => {
  const t = table();
  const a = wait(t);
  // Another member's (or a replayed log's) id: same low 30 bits, different id.
  t.settle(a.reqId + 2 ** 30, { ok: true, body: Buffer.from('not yours') });
  t.fail(a.reqId - 2 ** 30, Errors.timeout());
  assert.equal(t.size, 1);
  t.settle(a.reqId, { ok: true, body: Buffer.from('yours') });
  assert.equal((await a.result).toString(), 'yours');
});

test('pieces are joined in order before the last one', async () => {
  const t = table();
  const a = wait(t);
  t.part(a.reqId, Buffer.from('ab'));
  t.part(a.reqId, Buffer.from('cd'));
  t.settle(a.reqId, { ok: true, body: Buffer.from('e') });
  assert.equal((await a.result).toString(), 'abcde');
});

test('an error rejects, and is not counted as a failed proposal (the log answered it)', async () => {
  const t = table();
  const a = wait(t);
  t.settle(a.reqId, { ok: false, err: Errors.tooManyRequests() });
  await assert.rejects(a.result, (e: unknown) => e instanceof EtcdError && e.message === Errors.tooManyRequests().message);
  const b = wait(t);
  t.fail(b.reqId, Errors.leaderChanged());
  await assert.rejects(b.result, (e: unknown) => e instanceof EtcdError && e.message === Errors.leaderChanged().message);
  assert.equal(t.failedTotal, 1);
  assert.equal(t.size, 0);
});

test('admission stops at maxPending and after stop', async () => {
  const t = table(2);
  const a = wait(t);
  wait(t).result.catch(() => {});
  assert.throws(() => t.admit(), (e: unknown) => e instanceof EtcdError && e.message === Errors.tooManyRequests().message);
  t.stop();
  await assert.rejects(a.result, (e: unknown) => e instanceof EtcdError && e.message === Errors.stopped().message);
  assert.throws(() => t.admit(), (e: unknown) => e instanceof EtcdError && e.message === Errors.stopped().message);
});

test('answered requests get their stages recorded once their chunk of answers is handed out', async () => {
  const stages = new StageHistograms();
  const t = new RequestTable(1n, 100, new StageTracker(stages), () => {});
  const a = wait(t);
  const b = wait(t);
  t.settle(a.reqId, { ok: true, body: Buffer.from('a') });
  t.settle(b.reqId, { ok: true, body: Buffer.from('b') });
  await a.result;
  assert.deepEqual(stages.snapshot().rpcs, {}, 'nothing recorded before the chunk ends');
  t.answersHandedOut();
  t.answersHandedOut();
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(stages.snapshot().rpcs['Put']!['total']!.count, 2);
  t.answersHandedOut();
  await Promise.resolve();
  assert.equal(stages.snapshot().rpcs['Put']!['total']!.count, 2, 'recorded once');
});
