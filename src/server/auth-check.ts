// Who a request is made as, where requests enter (etcd's AuthInfoFromCtx and
// AuthInfoFromTLS), and the helper every service uses to run with it.

import type { AuthInfo } from '../auth/types.js';
import { EtcdError, untranslatedAuthError } from '../common/errors.js';
import type { Member } from '../member/member.js';

/** What a call carries that names its user: the token metadata, or a verified client certificate's CN. */
export interface Caller {
  readonly token?: string;
  readonly peerCommonName?: string | null;
}

/**
 * The caller's AuthInfo: from the token if there is one; else, as etcd with
 * --client-cert-auth, the client certificate's Common Name (the TLS layer sets
 * `peerCommonName` only for a verified chain); else none. Synchronous unless the
 * token names an entry not yet applied here.
 */
export function authInfo(member: Member, caller: Caller | undefined): AuthInfo | undefined | Promise<AuthInfo> {
  const ai = member.auth.infoFrom(caller?.token);
  // etcd's AuthInfoFromTLS runs only with --client-cert-auth.
  if (ai !== undefined || !member.cfg.tls.client.clientCertAuth) return ai;
  const cn = caller?.peerCommonName;
  if (cn === undefined || cn === null) return ai;
  return { username: cn, revision: member.auth.revision };
}

/** Runs `fn` with the caller's AuthInfo. */
export function withAuth<T>(member: Member, caller: Caller | undefined, fn: (ai: AuthInfo | undefined) => T | Promise<T>): T | Promise<T> {
  const ai = authInfo(member, caller);
  return ai instanceof Promise ? ai.then(fn) : fn(ai);
}

/** etcd's doSerialize: the range check as the caller (or as nobody), the read, then the stale-token check. */
export function readAs(member: Member, ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer, read: () => Promise<Buffer>): Promise<Buffer> {
  member.auth.checkRange(ai, key, rangeEnd);
  const served = read();
  if (ai === undefined) return served;
  return served.then((body) => { member.auth.checkNotStale(ai); return body; });
}

/** etcd's IsAdminPermitted at the API layer (Hash, HashKV, Snapshot, Defragment, member changes), then `fn`. */
export function asAdmin<T>(member: Member, caller: Caller | undefined, fn: () => T | Promise<T>): T | Promise<T> {
  return withAuth(member, caller, (ai) => {
    member.auth.checkAdmin(ai);
    return fn();
  });
}

/**
 * etcd's authMaintenanceServer.isAuthenticated (Defragment): the same admin
 * check, but its errors reach the client untranslated ("auth: permission
 * denied", UNKNOWN), as etcd 3.4 answers them.
 */
export async function asMaintenanceAdmin<T>(member: Member, caller: Caller | undefined, fn: () => T | Promise<T>): Promise<T> {
  try {
    member.auth.checkAdmin(await authInfo(member, caller));
  } catch (err) {
    throw err instanceof EtcdError ? untranslatedAuthError(err) : err;
  }
  return fn();
}
