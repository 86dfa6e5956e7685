// The auth store in etcd 3.4's backend (auth/store.go): the `auth` bucket
// (authEnabled, authRevision), `authUsers` (name -> authpb.User) and
// `authRoles` (name -> authpb.Role), both ways between etsd's auth state
// record (src/auth/state-record.ts) and a bbolt file.

import { decodeAuthpbRole, decodeAuthpbUser, encodeAuthpbRole, encodeAuthpbUser } from '../../auth/authpb.js';
import type { AuthState } from '../../auth/store.js';
import type { BboltReader } from './reader.js';
import type { BucketBuilder } from './writer.js';
import { AUTH_ENABLED_KEY, AUTH_REVISION_KEY, B, u64be } from './etcd-schema.js';

/** What a fresh etcd holds: revision 1 (NewAuthStore commits one), disabled, no users or roles. */
export const FRESH_AUTH: AuthState = { enabled: false, revision: 1, users: [], roles: [] };

export interface AuthBuckets { auth: BucketBuilder; users: BucketBuilder; roles: BucketBuilder }

/** Fills the three buckets; users and roles go in name order, which is bbolt's key order. */
export function putAuthBuckets(s: AuthState, b: AuthBuckets): void {
  // etcd writes the flag only on AuthEnable/AuthDisable; a disabled store is written as a never-enabled one.
  if (s.enabled) b.auth.put(AUTH_ENABLED_KEY, Buffer.from([1]));
  b.auth.put(AUTH_REVISION_KEY, u64be(s.revision));
  const byName = <T extends { name: string }>(list: T[]) =>
    list.map((x) => ({ k: Buffer.from(x.name, 'utf8'), x })).sort((p, q) => Buffer.compare(p.k, q.k));
  for (const { k, x } of byName(s.users)) b.users.put(k, encodeAuthpbUser(x));
  for (const { k, x } of byName(s.roles)) b.roles.put(k, encodeAuthpbRole(x));
}

/** The auth state a bbolt file holds; etcd's defaults for what is absent (revision 0 -> 1, as NewAuthStore). */
export function readAuthBuckets(r: BboltReader): AuthState {
  const s: AuthState = { ...FRESH_AUTH, users: [], roles: [] };
  const auth = r.bucket(r.root, B.auth);
  for (const e of auth === null ? [] : r.entries(auth)) {
    if (e.key.equals(AUTH_ENABLED_KEY)) s.enabled = e.value.length === 1 && e.value[0] === 1;
    else if (e.key.equals(AUTH_REVISION_KEY)) {
      if (e.value.length !== 8) throw new Error(`auth revision of ${e.value.length} bytes`);
      const rev = e.value.readBigUInt64BE(0);
      if (rev > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`auth revision ${rev} out of range`);
      s.revision = Math.max(1, Number(rev));
    }
  }
  const users = r.bucket(r.root, B.authUsers);
  for (const e of users === null ? [] : r.entries(users)) s.users.push(decodeAuthpbUser(e.value));
  const roles = r.bucket(r.root, B.authRoles);
  for (const e of roles === null ? [] : r.entries(roles)) s.roles.push(decodeAuthpbRole(e.value));
  return s;
}
