// A user's merged permissions and etcd 3.4's interval checks
// (auth/range_perm_cache.go over pkg/adt): single keys, ranges covered by
// several permissions with no gap, from-key ("\0"), read/write/readwrite,
// roles merged, and the edge cases of the affine order. A brute-force model
// (is every key of a small alphabet in the range covered?) checks random
// cases against the interval walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntervalSet, UserPerms, affineCompare, intervalCompare, pointInterval } from '../../src/auth/ranges.js';
import { PermType, type Permission, type Role, type User } from '../../src/auth/types.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const perm = (permType: PermType, key: string, rangeEnd = ''): Permission => ({ permType, key: B(key), rangeEnd: B(rangeEnd) });

function permsOf(roles: Record<string, Permission[]>, userRoles = Object.keys(roles)): UserPerms {
  const user: User = { name: 'u', password: undefined, roles: userRoles, noPassword: true };
  return UserPerms.of(user, (n) => (roles[n] ? { name: n, perms: roles[n]! } satisfies Role : undefined));
}

test('affine order: empty is greater than every key', () => {
  assert.equal(affineCompare(B(''), B('')), 0);
  assert.equal(affineCompare(B(''), B('\xff\xff')), 1);
  assert.equal(affineCompare(B('a'), B('')), -1);
  assert.equal(affineCompare(B('a'), B('b')), -1);
  assert.equal(intervalCompare(pointInterval(B('a')), { begin: B('a'), end: B('b') }), 0);
  assert.equal(intervalCompare({ begin: B('a'), end: B('b') }, { begin: B('b'), end: B('c') }), -1, 'half-open: touching is not overlapping');
  assert.equal(intervalCompare({ begin: B('c'), end: B('d') }, { begin: B('a'), end: B('c') }), 1);
});

test('single-key permissions: only that key, by point and by range', () => {
  const p = permsOf({ r: [perm(PermType.READ, 'foo')] });
  assert.ok(p.permits('read', B('foo'), B('')));
  assert.ok(!p.permits('read', B('fo'), B('')));
  assert.ok(!p.permits('read', B('foo\0'), B('')));
  assert.ok(!p.permits('write', B('foo'), B('')));
  assert.ok(p.permits('read', B('foo'), B('foo\0')), 'the range [foo, foo\\0) is the key itself');
  assert.ok(!p.permits('read', B('foo'), B('fop')));
});

test('range permissions: inside, on the edges, past the end', () => {
  const p = permsOf({ r: [perm(PermType.WRITE, 'b', 'd')] });
  assert.ok(p.permits('write', B('b'), B('')));
  assert.ok(p.permits('write', B('c\xff'), B('')));
  assert.ok(!p.permits('write', B('d'), B('')), 'the end is exclusive');
  assert.ok(!p.permits('write', B('a'), B('')));
  assert.ok(p.permits('write', B('b'), B('d')));
  assert.ok(p.permits('write', B('bb'), B('c')));
  assert.ok(!p.permits('write', B('a'), B('c')), 'starts before');
  assert.ok(!p.permits('write', B('c'), B('e')), 'ends after');
  assert.ok(!p.permits('write', B('b'), B('\0')), 'from-key is not covered by a bounded range');
});

test('ranges merge across permissions and roles when they touch or overlap, not across a gap', () => {
  const p = permsOf({ r1: [perm(PermType.READ, 'a', 'c')], r2: [perm(PermType.READ, 'c', 'e'), perm(PermType.READ, 'd', 'g')] });
  assert.ok(p.permits('read', B('a'), B('g')), '[a,c) + [c,e) + [d,g) cover [a,g)');
  assert.ok(p.permits('read', B('b'), B('f')));
  assert.ok(!p.permits('read', B('a'), B('h')));
  const gap = permsOf({ r: [perm(PermType.READ, 'a', 'c'), perm(PermType.READ, 'c\0', 'e')] });
  assert.ok(!gap.permits('read', B('a'), B('e')), 'the key "c" is missing');
  assert.ok(gap.permits('read', B('a'), B('c')));
  // A single key closes the gap: [c, c\0).
  const closed = permsOf({ r: [perm(PermType.READ, 'a', 'c'), perm(PermType.READ, 'c'), perm(PermType.READ, 'c\0', 'e')] });
  assert.ok(closed.permits('read', B('a'), B('e')));
  // Only roles the user holds count; a role that no longer exists adds nothing.
  const partial = permsOf({ r1: [perm(PermType.READ, 'a', 'c')], r2: [perm(PermType.READ, 'c', 'e')] }, ['r1', 'gone']);
  assert.ok(!partial.permits('read', B('a'), B('e')));
});

test('from-key ("\\0") reaches the end of the keyspace; readwrite grants both', () => {
  const p = permsOf({ r: [perm(PermType.READWRITE, 'm', '\0')] });
  for (const kind of ['read', 'write'] as const) {
    assert.ok(p.permits(kind, B('m'), B('')));
    assert.ok(p.permits(kind, B('\xff\xff\xff'), B('')));
    assert.ok(p.permits(kind, B('m'), B('\0')));
    assert.ok(p.permits(kind, B('z'), B('\0')));
    assert.ok(p.permits(kind, B('n'), B('\xff')));
    assert.ok(!p.permits(kind, B('l'), B('\0')));
    assert.ok(!p.permits(kind, B('a'), B('')));
  }
  // A bounded range next to a from-key one merges into it.
  const q = permsOf({ r: [perm(PermType.READ, 'a', 'm'), perm(PermType.READ, 'm', '\0')] });
  assert.ok(q.permits('read', B('a'), B('\0')));
  // An empty key with "\0" begins at the affine infinity: etcd 3.4 grants nothing with it.
  const empty = permsOf({ r: [perm(PermType.READ, '', '\0')] });
  assert.ok(!empty.permits('read', B('a'), B('')));
  assert.ok(!empty.permits('read', B('\0'), B('\0')));
  // etcdctl sends "\0" as the key for "all keys", which works.
  const all = permsOf({ r: [perm(PermType.READ, '\0', '\0')] });
  assert.ok(all.permits('read', B('\0'), B('\0')));
  assert.ok(all.permits('read', B('anything'), B('')));
});

test('degenerate requests follow etcd\'s walk: an empty range at a permitted start passes, an inverted one is judged by overlap', () => {
  const p = permsOf({ r: [perm(PermType.READ, 'a', 'c')] });
  assert.ok(p.permits('read', B('b'), B('b')), '[b,b) overlaps [a,c) and lies within it');
  assert.ok(!p.permits('read', B('c'), B('c')), '[c,c) does not overlap [a,c)');
  assert.ok(p.permits('read', B('b'), B('a')), 'inverted [b,a): overlaps [a,c), starts after a, end a <= c');
});

test('unknown permission types grant nothing', () => {
  const p = permsOf({ r: [perm(7 as PermType, 'a', 'z')] });
  assert.ok(!p.permits('read', B('b'), B('')));
  assert.ok(!p.permits('write', B('b'), B('')));
});

test('random ranges: the interval walk agrees with a brute-force model on well-formed cases', () => {
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const alphabet = ['a', 'aa', 'ab', 'b', 'ba', 'bb', 'c', 'ca', 'cc'];
  const keyAfter = (k: string) => k + '\0'; // the next key; the model's keys never contain \0
  let checked = 0;
  for (let round = 0; round < 400; round++) {
    const ivs: { begin: string; end: string }[] = [];
    const set = new IntervalSet();
    const n = 1 + rnd(4);
    for (let i = 0; i < n; i++) {
      const a = alphabet[rnd(alphabet.length)]!;
      const e = rnd(5) === 0 ? '' : alphabet[rnd(alphabet.length)]!;
      if (e !== '' && e <= a) continue;
      ivs.push({ begin: a, end: e });
      set.insert({ begin: B(a), end: B(e) });
    }
    if (ivs.length === 0) continue;
    const qb = alphabet[rnd(alphabet.length)]!;
    const qe = rnd(4) === 0 ? '' : rnd(2) === 0 ? keyAfter(qb) : alphabet[rnd(alphabet.length)]!;
    if (qe !== '' && qe <= qb) continue;
    assert.equal(set.contains({ begin: B(qb), end: B(qe) }), modelCoversExact(ivs, qb, qe),
      `ivs=${JSON.stringify(ivs)} query=[${qb},${qe})`);
    checked++;
  }
  assert.ok(checked > 150, `only ${checked} cases checked`);
});

/** Exact coverage of [b, e) by a union of half-open intervals (strings, "" = infinity end). */
function modelCoversExact(ivs: { begin: string; end: string }[], b: string, e: string): boolean {
  const lt = (x: string, y: string) => (y === '' ? x !== '' : x !== '' && x < y);
  let at = b;
  for (;;) {
    if (e !== '' && !lt(at, e)) return true;
    const next = ivs.filter((iv) => iv.begin <= at && lt(at, iv.end));
    if (next.length === 0) return false;
    let far = next[0]!.end;
    for (const iv of next) if (iv.end === '' || (far !== '' && iv.end > far)) far = iv.end;
    if (far === '') return true;
    at = far;
  }
}
