// Unit tests of the case-file parser and the output normalizer (no servers).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  coarseTtl, dropCancelNoise, firstLines, sortLeaseKeys, normalizeProtobuf, normalizeText, parseCases, recordedSteps, splitArgs, wantsProtobuf, CaseParseError, LeaseIds,
  type Step,
} from './cases.js';

const run = (s: Step | undefined): Extract<Step, { kind: 'run' | 'bg' }> => {
  if (s === undefined || (s.kind !== 'run' && s.kind !== 'bg')) throw new Error(`not an etcdctl step: ${JSON.stringify(s)}`);
  return s;
};

const fail = (msg: string): never => {
  throw new Error(msg);
};

test('splitArgs: quotes, escapes and the | separator', () => {
  assert.deepEqual(splitArgs(`put "a b" 'c\\n' d\\x41 "\\xe2\\x9c\\x93"`, fail), { args: ['put', 'a b', 'c\\n', 'dA', '✓'], rest: -1 });
  assert.deepEqual(splitArgs(`put "a|b" x | rest`, fail), { args: ['put', 'a|b', 'x'], rest: 13 });
  assert.deepEqual(splitArgs(`put "" x`, fail), { args: ['put', '', 'x'], rest: -1 });
  assert.deepEqual(splitArgs(`get ключ`, fail), { args: ['get', 'ключ'], rest: -1 });
  assert.throws(() => splitArgs(`put "\\x00"`, fail), /NUL/);
  assert.throws(() => splitArgs(`put "\\xff"`, fail), /UTF-8/);
  assert.throws(() => splitArgs(`put "abc`, fail), /unterminated/);
  assert.throws(() => splitArgs(`put \\q`, fail), /unknown escape/);
});

test('parseCases: comments, stdin field, errors with line numbers', () => {
  const cases = parseCases(
    ['# comment', '', 'a | put k v', 'b | txn -w json | value("k") = "v"\\n\\nget k\\n\\n\\n', 'c | put bin |  a\\0b\\xff\\x20 '].join('\n'),
    'x.txt',
  );
  assert.equal(cases.length, 3);
  assert.deepEqual(run(cases[0]!.steps[0]).args, ['put', 'k', 'v']);
  assert.equal(run(cases[0]!.steps[0]).stdin.length, 0);
  assert.equal(cases[0]!.line, 3);
  assert.deepEqual(run(cases[1]!.steps[0]).args, ['txn', '-w', 'json']);
  assert.equal(run(cases[1]!.steps[0]).stdin.toString(), 'value("k") = "v"\n\nget k\n\n\n');
  assert.deepEqual([...run(cases[2]!.steps[0]).stdin], [0x61, 0x00, 0x62, 0xff, 0x20]);
  assert.throws(() => parseCases('a | put k v\na | get k', 'x.txt'), (e: unknown) => e instanceof CaseParseError && e.line === 2);
  assert.throws(() => parseCases('bad name | get k', 'x.txt'), /x\.txt:1: bad case name/);
  assert.throws(() => parseCases('n | etcdctl get k', 'x.txt'), /leading "etcdctl"/);
  assert.throws(() => parseCases('n | get k --endpoints=x', 'x.txt'), /added by the harness/);
});

test('normalizeText: ids and terms zeroed, revisions kept, client noise removed', () => {
  const json = '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":7,"raft_term":2}}\n';
  assert.equal(
    normalizeText(Buffer.from(json), '127.0.0.1:1234').toString(),
    '{"header":{"cluster_id":0,"member_id":0,"revision":7,"raft_term":0}}\n',
  );
  const fields = '"ClusterID" : 151\n"MemberID" : 136\n"Revision" : 9\n"RaftTerm" : 2\n"ClusterID" : 5\n';
  assert.equal(
    normalizeText(Buffer.from(fields), 'x').toString(),
    '"ClusterID" : 0\n"MemberID" : 0\n"Revision" : 9\n"RaftTerm" : 0\n"ClusterID" : 5\n',
  );
  const warn =
    '{"level":"warn","ts":"2026-11-22T05:25:13.822Z","target":"endpoint://client-8dd28ba4-2a0a-4931-821b-365503446aef/127.0.0.1:23791","attempt":0}\n';
  assert.equal(
    normalizeText(Buffer.from(warn), '127.0.0.1:23791').toString(),
    '{"level":"warn","ts":"<ts>","target":"endpoint://client-<uuid>/<endpoint>","attempt":0}\n',
  );
  const bin = Buffer.from([0x00, 0xff, 0xfe, 0x0a]);
  assert.deepEqual(normalizeText(bin, 'x'), bin);
});

test('normalizeProtobuf: header ids and term dropped, revision and body kept', () => {
  // `etcdctl get a -w protobuf` from etcd 3.4: RangeResponse{header{cluster_id, member_id,
  // revision=3, raft_term=2}, kvs[{key "a", create 2, mod 3, version 2, value "2"}], count=1}.
  const real = Buffer.from(
    '0a1a' + '08aaf4e5f599f3ebe7d101' + '108df2f48ec1f7a6d7bd01' + '1803' + '2002' + '120c0a01611002180320022a0132' + '2001',
    'hex',
  );
  const norm = normalizeProtobuf(real);
  assert.ok(norm.length < real.length);
  assert.deepEqual([...norm.subarray(0, 4)], [0x0a, 0x02, 0x18, 0x03]); // header{revision=3}
  assert.deepEqual(norm.subarray(4), real.subarray(28)); // the rest is untouched
  const other = Buffer.from(real);
  other[3] = 0xab; // a different cluster id normalizes to the same bytes
  assert.deepEqual(normalizeProtobuf(other), norm);
  const garbage = Buffer.from([0x0a, 0x50, 0x01]);
  assert.deepEqual(normalizeProtobuf(garbage), garbage); // unparsable: left as is
  assert.equal(wantsProtobuf(['get', 'k', '-w', 'protobuf']), true);
  assert.equal(wantsProtobuf(['get', 'k', '--write-out=protobuf']), true);
  assert.equal(wantsProtobuf(['get', 'k', '-w', 'json']), false);
});

test('parseCases: multi-step cases, background steps and directives', () => {
  const cases = parseCases(
    [
      'w | &w watch k --prefix',
      '  | @sleep 300',
      '  | put k v',
      '  | @wait w 3',
      '  | @coarse-ttl',
      'x | lease grant 10',
      '  | put a b --lease=$L1',
      '  | &i watch -i | watch a\\n',
      '  | @until 2 get a --prefix',
      '  | @kill i',
    ].join('\n'),
    'x.txt',
  );
  assert.equal(cases.length, 2);
  const [w, x] = cases;
  assert.deepEqual(w!.steps.map((s) => s.kind), ['bg', 'sleep', 'run', 'wait']);
  assert.equal(w!.coarseTtl, true);
  assert.deepEqual(w!.steps[3], { kind: 'wait', line: 4, id: 'w', lines: 3 });
  assert.deepEqual(x!.steps.map((s) => s.kind), ['run', 'run', 'bg', 'until', 'kill']);
  assert.equal(x!.coarseTtl, false);
  assert.deepEqual(run(x!.steps[1]).args, ['put', 'a', 'b', '--lease=$L1']);
  assert.equal(run(x!.steps[2]).stdin.toString(), 'watch a\n');
  assert.deepEqual(recordedSteps(x!).map((s) => s.line), [6, 7, 8]);
  assert.throws(() => parseCases('  | get k', 'x.txt'), /x\.txt:1: a step line/);
  assert.throws(() => parseCases('a | get k\n  | @wait w 1', 'x.txt'), /x\.txt:2: @wait: "w" is not a background step/);
  assert.throws(() => parseCases('a | &w watch k\n  | &w watch k', 'x.txt'), /used twice/);
  assert.throws(() => parseCases('a | @sleep 10', 'x.txt'), /no etcdctl step/);
  assert.throws(() => parseCases('a | get k\n  | @sleep 6000\n  | @sleep 6000', 'x.txt'), /x\.txt:3: more than/);
  assert.throws(() => parseCases('a | get k\n  | @nap 1', 'x.txt'), /unknown directive/);
  assert.throws(() => parseCases('a | get k\n  | @kill | x', 'x.txt'), /takes no stdin/);
});

test('LeaseIds: hex and decimal forms, order of first appearance, variables', () => {
  const l = new LeaseIds();
  const a = 0x3ceea201cef75d05n;
  const b = 0x694d7a0f1c1c340n; // 15 hex digits: %x in a lock key, %016x elsewhere
  const out = [
    `lease ${b.toString(16).padStart(16, '0')} granted with TTL(10s)`,
    `{"ID":${a},"TTL":5}`,
    `mylock/${b.toString(16)}`,
    `lease ${a.toString(16)} revoked`,
    `"ID" : ${a}`,
    'lease 0000000000001234 already expired',
  ].join('\n');
  l.scan(out);
  assert.equal(l.hex(1), b.toString(16));
  assert.equal(l.hex(2), a.toString(16));
  assert.equal(l.hex(3), undefined);
  assert.equal(
    l.normalize(out),
    ['lease <L1> granted with TTL(10s)', '{"ID":<L2>,"TTL":5}', 'mylock/<L1>', 'lease <L2> revoked', '"ID" : <L2>', 'lease 0000000000001234 already expired'].join('\n'),
  );
  assert.equal(l.substitute('--lease=$L2'), `--lease=${a.toString(16)}`);
  assert.throws(() => l.substitute('$L3'), /\$L3 is not defined/);
  // Revisions, cluster ids in other fields and short hex are untouched.
  assert.equal(l.normalize('{"revision":12,"cluster_id":0} abc123 deadbeef'), '{"revision":12,"cluster_id":0} abc123 deadbeef');
});

test('coarseTtl: only remaining TTLs just below the granted TTL', () => {
  assert.equal(coarseTtl('lease <L1> granted with TTL(100s), remaining(99s)'), 'lease <L1> granted with TTL(100s), remaining(~100s)');
  assert.equal(coarseTtl('TTL(100s), remaining(100s)'), 'TTL(100s), remaining(~100s)');
  assert.equal(coarseTtl('TTL(100s), remaining(95s)'), 'TTL(100s), remaining(~100s)');
  assert.equal(coarseTtl('TTL(100s), remaining(94s)'), 'TTL(100s), remaining(94s)');
  assert.equal(coarseTtl('TTL(10s), remaining(7s)'), 'TTL(10s), remaining(7s)');
  assert.equal(coarseTtl('TTL(100s), remaining(101s)'), 'TTL(100s), remaining(101s)');
  assert.equal(coarseTtl('"ttl":-1,"granted-ttl":0'), '"ttl":-1,"granted-ttl":0');
  assert.equal(coarseTtl('"id":<L1>,"ttl":9,"granted-ttl":10,"keys"'), '"id":<L1>,"ttl":~10,"granted-ttl":10,"keys"');
  assert.equal(coarseTtl('"TTL" : 8\n"GrantedTTL" : 10'), '"TTL" : ~10\n"GrantedTTL" : 10');
});

test('firstLines', () => {
  assert.equal(firstLines(Buffer.from('a\nb\nc\n'), 2).toString(), 'a\nb\n');
  assert.equal(firstLines(Buffer.from('a\nb'), 5).toString(), 'a\nb');
});

test('sortLeaseKeys: attached keys come in random (Go map) order', () => {
  assert.equal(sortLeaseKeys('remaining(~100s), attached keys([lk2 lk1])'), 'remaining(~100s), attached keys([lk1 lk2])');
  assert.equal(sortLeaseKeys('attached keys([])'), 'attached keys([])');
  assert.equal(sortLeaseKeys('"granted-ttl":100,"keys":["bGsy","bGsx"]}'), '"granted-ttl":100,"keys":["bGsx","bGsy"]}');
  assert.equal(sortLeaseKeys('"keys":null'), '"keys":null');
});

test('dropCancelNoise: only the client-side cancellation warning', () => {
  const cancel = '{"level":"warn","ts":"<ts>","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-<uuid>/<endpoint>","attempt":0,"error":"rpc error: code = Canceled desc = context canceled"}\n';
  const other = cancel.replace('Canceled desc = context canceled', 'NotFound desc = etcdserver: requested lease not found');
  assert.equal(dropCancelNoise(cancel + 'Error: x\n'), 'Error: x\n');
  assert.equal(dropCancelNoise(other), other);
});
