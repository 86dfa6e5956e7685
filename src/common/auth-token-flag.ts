// The --auth-token value split as etcd 3.4's decomposeOpts (auth/store.go)
// splits it: "TYPE[,key=value...]". Only the shape is checked here; the token
// provider (src/auth/) reads the options it knows (jwt's keys and ttl) when
// the member starts, as etcd's NewTokenProvider does.

export type AuthTokenType = 'simple' | 'jwt';

export interface AuthTokenSpec {
  type: AuthTokenType;
  /** The type's own options, in the order given (etcd ignores them for simple). */
  opts: Map<string, string>;
}

/** What went wrong, in the words of etcd's log line; the start then fails with "auth: invalid auth options". */
export class AuthTokenFlagError extends Error {
  override name = 'AuthTokenFlagError';
}

export const INVALID_AUTH_OPTS = 'auth: invalid auth options';

/**
 * etcd's decomposeOpts and NewTokenProvider's type switch. An option that is
 * not exactly one "key=value" or a repeated key refuses the flag; so does a
 * type other than simple or jwt. (etcd also takes an empty type as its "nop"
 * provider, which never issues a token; etsd refuses it.)
 */
export function parseAuthTokenFlag(value: string): AuthTokenSpec {
  const parts = value.split(',');
  const type = parts[0]!;
  const opts = new Map<string, string>();
  for (const part of parts.slice(1)) {
    const pair = part.split('=');
    if (pair.length !== 2) throw new AuthTokenFlagError(`invalid token specific option: ${value}`);
    if (opts.has(pair[0]!)) throw new AuthTokenFlagError(`invalid token specific option, duplicated parameters (${pair[0]}): ${value}`);
    opts.set(pair[0]!, pair[1]!);
  }
  if (type !== 'simple' && type !== 'jwt') throw new AuthTokenFlagError(`unknown token type: ${type}`);
  return { type, opts };
}
