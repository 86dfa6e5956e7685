// --bcrypt-cost as etcd reads it (auth.NewAuthStore): a cost outside
// golang.org/x/crypto/bcrypt's [MinCost, MaxCost] falls back to the default,
// with a warning, rather than failing start-up.

export const BCRYPT_MIN_COST = 4;
export const BCRYPT_MAX_COST = 31;
export const BCRYPT_DEFAULT_COST = 10;

export function bcryptCost(given: number): { cost: number; defaulted: boolean } {
  if (!Number.isInteger(given) || given < BCRYPT_MIN_COST || given > BCRYPT_MAX_COST) {
    return { cost: BCRYPT_DEFAULT_COST, defaulted: true };
  }
  return { cost: given, defaulted: false };
}
