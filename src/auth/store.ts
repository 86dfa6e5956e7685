// The auth store: users, roles, their permissions, the enabled flag and the
// auth revision, with etcd 3.4's rules (auth/store.go) and its applier's
// checks around them (etcdserver/apply_auth.go). Pure and deterministic: no
// clock, no randomness, no I/O, no hashing. Passwords arrive already hashed
// (bcrypt runs in the one-off pool) and are compared there too; tokens live
// in SimpleTokens, which the store drives through the effects it returns.
//
// The auth revision is bumped exactly where etcd bumps it: every user or role
// change that succeeds, AuthDisable when auth was on; never AuthEnable, a
// read, Authenticate, or a grant of a role the user already has. A new store
// starts at revision 1 (etcd's NewAuthStore commits one when it finds none).

import { Errors } from '../common/errors.js';
import { UserPerms } from './ranges.js';
import { ROOT_ROLE, ROOT_USER, type AuthInfo, type Permission, type Role, type User } from './types.js';

/** The state a snapshot or the database holds (state-record.ts serialises it). */
export interface AuthState {
  enabled: boolean;
  revision: number;
  users: User[];
  roles: Role[];
}

/** The Auth service's requests as they are applied (passwords already hashed, tokens' prefixes chosen). */
export type AuthRequest =
  | { method: 'AuthEnable' }
  | { method: 'AuthDisable' }
  | { method: 'Authenticate'; name: string; simpleToken: string }
  | { method: 'UserAdd'; name: string; hashedPassword: string | undefined; noPassword: boolean }
  | { method: 'UserGet'; name: string }
  | { method: 'UserList' }
  | { method: 'UserDelete'; name: string }
  | { method: 'UserChangePassword'; name: string; hashedPassword: string }
  | { method: 'UserGrantRole'; user: string; role: string }
  | { method: 'UserRevokeRole'; name: string; role: string }
  | { method: 'RoleAdd'; name: string }
  | { method: 'RoleGet'; role: string }
  | { method: 'RoleList' }
  | { method: 'RoleDelete'; role: string }
  | { method: 'RoleGrantPermission'; name: string; perm: Permission }
  | { method: 'RoleRevokePermission'; role: string; key: Buffer; rangeEnd: Buffer };

export type AuthMethod = AuthRequest['method'];

/** What a request answers beyond its header. */
export type AuthResponse =
  | { method: 'Authenticate'; token: string }
  | { method: 'UserGet'; roles: string[] }
  | { method: 'UserList'; users: string[] }
  | { method: 'RoleGet'; perms: Permission[] }
  | { method: 'RoleList'; roles: string[] }
  | { method: Exclude<AuthMethod, 'Authenticate' | 'UserGet' | 'UserList' | 'RoleGet' | 'RoleList'> };

/** What the token table must do after an applied request (etcd's tokenProvider calls). */
export type TokenEffect =
  | { kind: 'enable' }
  | { kind: 'disable' }
  | { kind: 'invalidateUser'; name: string }
  | { kind: 'assign'; token: string; username: string };

export interface AuthOutcome { response: AuthResponse; effect: TokenEffect | undefined }

/** needAdminPermission: the requests only a root-role user may make while auth is on. */
const ADMIN_ONLY: ReadonlySet<AuthMethod> = new Set<AuthMethod>([
  'AuthEnable', 'AuthDisable', 'UserAdd', 'UserDelete', 'UserChangePassword', 'UserGrantRole',
  'UserRevokeRole', 'RoleAdd', 'RoleGrantPermission', 'RoleRevokePermission', 'RoleDelete',
  'UserList', 'RoleList',
]);

/** Go's string order: bytewise over UTF-8. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** sort.SearchStrings over a sorted list: is name in it? */
function hasName(sorted: readonly string[], name: string): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNames(sorted[mid]!, name) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo] === name;
}

const hasRootRole = (u: User): boolean => hasName(u.roles, ROOT_ROLE);

export class AuthStore {
  private enabled = false;
  private rev = 1;
  private readonly users = new Map<string, User>();
  private readonly roles = new Map<string, Role>();
  /** rangePermCache: built per user on first check, dropped on every change. */
  private readonly permCache = new Map<string, UserPerms>();

  static fromState(s: AuthState): AuthStore {
    const st = new AuthStore();
    st.enabled = s.enabled;
    st.rev = s.revision;
    for (const u of s.users) st.users.set(u.name, { ...u, roles: [...u.roles].sort(compareNames) });
    for (const r of s.roles) st.roles.set(r.name, { name: r.name, perms: r.perms.map(copyPerm) });
    return st;
  }

  /** A copy of the whole state, users and roles in name order. */
  state(): AuthState {
    return {
      enabled: this.enabled,
      revision: this.rev,
      users: this.sortedUsers().map((u) => ({ ...u, roles: [...u.roles] })),
      roles: this.sortedRoles().map((r) => ({ name: r.name, perms: r.perms.map(copyPerm) })),
    };
  }

  get isEnabled(): boolean { return this.enabled; }
  get revision(): number { return this.rev; }

  // ---- the applier: admin checks, then the store operation ----

  /**
   * Applies one Auth request as etcd's authApplierV3 + applierV3backend do.
   * `info` is the user and auth revision the proposing member read from the
   * request's token (empty when there was none); `index` is the raft index
   * of the entry (simple tokens end in it).
   */
  apply(info: AuthInfo, req: AuthRequest, index: number): AuthOutcome {
    if (ADMIN_ONLY.has(req.method)) this.checkAdmin(info);
    switch (req.method) {
      case 'AuthEnable': return this.authEnable();
      case 'AuthDisable': return this.authDisable();
      case 'Authenticate': return this.authenticate(req.name, req.simpleToken, index);
      case 'UserAdd': return this.userAdd(req.name, req.hashedPassword, req.noPassword);
      case 'UserGet': {
        if (this.adminError(info) !== undefined && req.name !== info.username) throw this.adminError(info)!;
        return plain({ method: 'UserGet', roles: [...this.mustUser(req.name).roles] });
      }
      case 'UserList': return plain({ method: 'UserList', users: this.sortedUsers().map((u) => u.name) });
      case 'UserDelete': return this.userDelete(req.name);
      case 'UserChangePassword': return this.userChangePassword(req.name, req.hashedPassword);
      case 'UserGrantRole': return this.userGrantRole(req.user, req.role);
      case 'UserRevokeRole': return this.userRevokeRole(req.name, req.role);
      case 'RoleAdd': return this.roleAdd(req.name);
      case 'RoleGet': {
        if (this.adminError(info) !== undefined && !this.hasRole(info.username, req.role)) throw this.adminError(info)!;
        const role = this.roles.get(req.role);
        if (role === undefined) throw Errors.roleNotFound();
        return plain({ method: 'RoleGet', perms: role.perms.map(copyPerm) });
      }
      case 'RoleList': return plain({ method: 'RoleList', roles: this.sortedRoles().map((r) => r.name) });
      case 'RoleDelete': return this.roleDelete(req.role);
      case 'RoleGrantPermission': return this.roleGrantPermission(req.name, req.perm);
      case 'RoleRevokePermission': return this.roleRevokePermission(req.role, req.key, req.rangeEnd);
    }
  }

  // ---- permission checks (isOpPermitted, IsAdminPermitted) ----

  checkRange(info: AuthInfo, key: Buffer, rangeEnd: Buffer): void { this.checkOp(info, key, rangeEnd, 'read'); }
  checkPut(info: AuthInfo, key: Buffer): void { this.checkOp(info, key, EMPTY, 'write'); }
  checkDeleteRange(info: AuthInfo, key: Buffer, rangeEnd: Buffer): void { this.checkOp(info, key, rangeEnd, 'write'); }

  /** IsAdminPermitted: with auth on, only a user holding the root role. */
  checkAdmin(info: AuthInfo): void {
    const err = this.adminError(info);
    if (err !== undefined) throw err;
  }

  /** etcd's HasRole. */
  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  /**
   * CheckPassword's part that reads the store: the hash to compare (in the
   * pool) and the revision it was read at. Authenticate retries when the
   * revision moved before its entry applied.
   */
  passwordToCheck(name: string): { hash: string; revision: number } {
    if (!this.enabled) throw Errors.authNotEnabled();
    const u = this.users.get(name);
    if (u === undefined) throw Errors.authFailed();
    if (u.noPassword) throw Errors.noPasswordUser();
    // A user added with a password always has its hash; an absent one would be a corrupt record.
    if (u.password === undefined) throw Errors.authFailed();
    return { hash: u.password, revision: this.rev };
  }

  private checkOp(info: AuthInfo, key: Buffer, rangeEnd: Buffer, kind: 'read' | 'write'): void {
    if (!this.enabled) return;
    if (info.revision === 0) throw Errors.userEmpty();
    if (info.revision < this.rev) throw Errors.authOldRevision();
    const user = this.users.get(info.username);
    if (user === undefined) throw Errors.permissionDenied();
    if (hasRootRole(user)) return;
    if (!this.permsOf(user).permits(kind, key, rangeEnd)) throw Errors.permissionDenied();
  }

  private adminError(info: AuthInfo): Error | undefined {
    if (!this.enabled) return undefined;
    if (info.username === '') return Errors.userEmpty();
    const u = this.users.get(info.username);
    if (u === undefined) return Errors.userNotFound();
    if (!hasRootRole(u)) return Errors.permissionDenied();
    return undefined;
  }

  private permsOf(user: User): UserPerms {
    let p = this.permCache.get(user.name);
    if (p === undefined) {
      p = UserPerms.of(user, (name) => this.roles.get(name));
      this.permCache.set(user.name, p);
    }
    return p;
  }

  // ---- the operations (auth/store.go) ----

  private authEnable(): AuthOutcome {
    if (this.enabled) return plain({ method: 'AuthEnable' });
    const root = this.users.get(ROOT_USER);
    if (root === undefined) throw Errors.rootUserNotExist();
    if (!hasRootRole(root)) throw Errors.rootRoleNotExist();
    this.enabled = true;
    this.permCache.clear();
    return { response: { method: 'AuthEnable' }, effect: { kind: 'enable' } };
  }

  private authDisable(): AuthOutcome {
    if (!this.enabled) return plain({ method: 'AuthDisable' });
    this.enabled = false;
    this.changed();
    return { response: { method: 'AuthDisable' }, effect: { kind: 'disable' } };
  }

  private authenticate(name: string, simpleToken: string, index: number): AuthOutcome {
    if (!this.enabled) throw Errors.authNotEnabled();
    const u = this.users.get(name);
    if (u === undefined || u.noPassword) throw Errors.authFailed();
    const token = `${simpleToken}.${index}`;
    return { response: { method: 'Authenticate', token }, effect: { kind: 'assign', token, username: name } };
  }

  private userAdd(name: string, hashedPassword: string | undefined, noPassword: boolean): AuthOutcome {
    if (name.length === 0) throw Errors.userEmpty();
    if (this.users.has(name)) throw Errors.userAlreadyExist();
    this.users.set(name, { name, password: noPassword ? undefined : hashedPassword, roles: [], noPassword });
    this.changed();
    return plain({ method: 'UserAdd' });
  }

  private userDelete(name: string): AuthOutcome {
    if (this.enabled && name === ROOT_USER) throw Errors.invalidAuthMgmt();
    if (!this.users.delete(name)) throw Errors.userNotFound();
    this.changed();
    return { response: { method: 'UserDelete' }, effect: { kind: 'invalidateUser', name } };
  }

  private userChangePassword(name: string, hashedPassword: string): AuthOutcome {
    const u = this.mustUser(name);
    // etcd keeps the user's options: a no-password user stays one (and cannot log in).
    this.users.set(name, { ...u, password: hashedPassword });
    this.changed();
    return { response: { method: 'UserChangePassword' }, effect: { kind: 'invalidateUser', name } };
  }

  private userGrantRole(userName: string, role: string): AuthOutcome {
    const u = this.mustUser(userName);
    // The root role need not exist to be granted (etcd's rule).
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw Errors.roleNotFound();
    if (hasName(u.roles, role)) return plain({ method: 'UserGrantRole' });
    this.users.set(userName, { ...u, roles: [...u.roles, role].sort(compareNames) });
    this.changed();
    return plain({ method: 'UserGrantRole' });
  }

  private userRevokeRole(name: string, role: string): AuthOutcome {
    if (this.enabled && name === ROOT_USER && role === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    const u = this.mustUser(name);
    const roles = u.roles.filter((r) => r !== role);
    if (roles.length === u.roles.length) throw Errors.roleNotGranted();
    this.users.set(name, { ...u, roles });
    this.changed();
    return plain({ method: 'UserRevokeRole' });
  }

  private roleAdd(name: string): AuthOutcome {
    if (name.length === 0) throw Errors.roleEmpty();
    if (this.roles.has(name)) throw Errors.roleAlreadyExist();
    this.roles.set(name, { name, perms: [] });
    this.changed();
    return plain({ method: 'RoleAdd' });
  }

  private roleDelete(name: string): AuthOutcome {
    if (this.enabled && name === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    if (!this.roles.delete(name)) throw Errors.roleNotFound();
    for (const u of this.users.values()) {
      if (u.roles.includes(name)) this.users.set(u.name, { ...u, roles: u.roles.filter((r) => r !== name) });
    }
    this.changed();
    return plain({ method: 'RoleDelete' });
  }

  private roleGrantPermission(name: string, perm: Permission): AuthOutcome {
    const role = this.roles.get(name);
    if (role === undefined) throw Errors.roleNotFound();
    const perms = role.perms.map(copyPerm);
    // etcd looks only at the first permission with a key >= the new one's: if it
    // is the same key and range end it is updated, else the new one is added
    // (so a second range on one key can be added twice; etcd does the same).
    const idx = firstKeyAtLeast(perms, perm.key);
    const at = perms[idx];
    if (at !== undefined && at.key.equals(perm.key) && at.rangeEnd.equals(perm.rangeEnd)) {
      perms[idx] = { ...at, permType: perm.permType };
    } else {
      perms.push(copyPerm(perm));
      perms.sort((a, b) => Buffer.compare(a.key, b.key)); // stable, as Go's insertion sort on short lists
    }
    this.roles.set(name, { name, perms });
    this.changed();
    return plain({ method: 'RoleGrantPermission' });
  }

  private roleRevokePermission(name: string, key: Buffer, rangeEnd: Buffer): AuthOutcome {
    const role = this.roles.get(name);
    if (role === undefined) throw Errors.roleNotFound();
    const perms = role.perms.filter((p) => !p.key.equals(key) || !p.rangeEnd.equals(rangeEnd));
    if (perms.length === role.perms.length) throw Errors.permissionNotGranted();
    this.roles.set(name, { name, perms });
    this.changed();
    return plain({ method: 'RoleRevokePermission' });
  }

  // ---- helpers ----

  private mustUser(name: string): User {
    const u = this.users.get(name);
    if (u === undefined) throw Errors.userNotFound();
    return u;
  }

  /** commitRevision + refreshRangePermCache. */
  private changed(): void {
    this.rev++;
    this.permCache.clear();
  }

  private sortedUsers(): User[] { return [...this.users.values()].sort((a, b) => compareNames(a.name, b.name)); }
  private sortedRoles(): Role[] { return [...this.roles.values()].sort((a, b) => compareNames(a.name, b.name)); }
}

const EMPTY = Buffer.alloc(0);

function plain(response: AuthResponse): AuthOutcome { return { response, effect: undefined }; }

function copyPerm(p: Permission): Permission {
  return { permType: p.permType, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) };
}

/** sort.Search over perms sorted by key: the first with key >= `key`. */
function firstKeyAtLeast(perms: readonly Permission[], key: Buffer): number {
  let lo = 0;
  let hi = perms.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (Buffer.compare(perms[mid]!.key, key) >= 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
