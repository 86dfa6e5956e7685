// etcd's NewTokenProvider for --auth-token jwt: the keys are read when the
// member starts, with etcd's log lines, so a bad option stops the start
// instead of the first Authenticate.

import type { AuthTokenSpec } from '../common/auth-token-flag.js';
import type { Logger } from '../common/log.js';
import { JwtOptionsError, loadJwtKeys, unknownJwtOptions } from './jwt-options.js';
import { JwtTokens } from './jwt-tokens.js';

/** The JWT tokens the flag asks for; null for simple tokens. Throws a JwtOptionsError (a ConfigError) as etcd fails. */
export function jwtTokensFor(spec: AuthTokenSpec, log: Logger): JwtTokens | null {
  if (spec.type !== 'jwt') {
    log.warn('simple token is not cryptographically signed');
    return null;
  }
  let tokens: JwtTokens;
  try {
    const keys = loadJwtKeys(spec.opts);
    tokens = new JwtTokens(keys, {
      onInvalid: (token, reason) => log.warn({ token, error: reason }, 'failed to parse a JWT token'),
    });
  } catch (err) {
    if (err instanceof JwtOptionsError) {
      if (err.logged !== undefined) log.error({ error: err.logged }, 'problem loading JWT options');
      log.warn({ error: err.message }, 'failed to create token provider');
    }
    throw err;
  }
  const unknown = unknownJwtOptions(spec.opts);
  if (unknown.length > 0) log.warn({ keys: unknown }, 'unknown JWT options');
  log.info({ 'sign-method': tokens.alg, 'verify-only': tokens.verifyOnly }, 'using JWT auth tokens');
  return tokens;
}
