// Unit tests of the case-file parser and the output normalizer (no servers).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeProtobuf, normalizeText, parseCases, splitArgs, wantsProtobuf, CaseParseError } from './cases.js';

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
  assert.deepEqual(cases[0]!.args, ['put', 'k', 'v']);
  assert.equal(cases[0]!.stdin.length, 0);
  assert.equal(cases[0]!.line, 3);
  assert.deepEqual(cases[1]!.args, ['txn', '-w', 'json']);
  assert.equal(cases[1]!.stdin.toString(), 'value("k") = "v"\n\nget k\n\n\n');
  assert.deepEqual([...cases[2]!.stdin], [0x61, 0x00, 0x62, 0xff, 0x20]);
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
