// The parser of etcd 3.4's benchmark report (pkg/report), on text the tool printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseToolReport } from '../../bench/load/etcdtool.js';

const ONE_CLIENT = `
Summary:
  Total:	0.348947839 secs.
  Slowest:	0.012156751 secs.
  Fastest:	0.000666612 secs.
  Average:	0.0017337036500000003 secs.
  Stddev:	0.0011733212154742781 secs.
  Requests/sec:	573.1515649248655

Response time histogram:
  0.000666612 [1]	|
  0.0018156259 [146]	|∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎∎

Latency distribution:
  10% in 0.000976342 secs.
  50% in 0.001477559 secs.
  90% in 0.002441137 secs.
  99% in 0.006544996 secs.
`;

test('a one-client report: throughput, wall time, percentiles in microseconds', () => {
  const r = parseToolReport(ONE_CLIENT);
  assert.equal(r.wallSec, 0.348947839);
  assert.equal(Math.round(r.throughput), 573);
  assert.equal(r.requests, 200);
  assert.equal(r.errors, 0);
  assert.equal(Math.round(r.latencyUs.p50!), 1478);
  assert.equal(Math.round(r.latencyUs.p99!), 6545);
});

test('errors are counted from the error distribution', () => {
  const r = parseToolReport(ONE_CLIENT + '\nError distribution:\n  [3]\trpc error: code = Unavailable desc = etcdserver: leader changed\n  [2]\tcontext deadline exceeded\n');
  assert.equal(r.errors, 5);
});

test('a report without percentiles is an error, not zeros', () => {
  assert.throws(() => parseToolReport('Summary:\n  Total:\t1 secs.\n  Requests/sec:\t10\n'), /p50\/p99/);
});
