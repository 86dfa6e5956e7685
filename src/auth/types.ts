// The auth store's data, as etcd 3.4's authpb has it (auth/authpb/auth.proto).
// Names are strings (etcd's requests carry them as strings); keys are bytes.

/** authpb.Permission.Type: the numbers on the wire. */
export const enum PermType { READ = 0, WRITE = 1, READWRITE = 2 }

export interface Permission {
  permType: PermType;
  key: Buffer;
  /** Empty: the single key. "\0": every key from `key` on. Otherwise [key, rangeEnd). */
  rangeEnd: Buffer;
}

export interface User {
  name: string;
  /** The bcrypt hash; absent for a no-password user. */
  password: string | undefined;
  /** Sorted, as etcd keeps them (sort.Strings). */
  roles: string[];
  noPassword: boolean;
}

export interface Role {
  name: string;
  /** Sorted by key (stable), as etcd's permSlice sort keeps them. */
  perms: Permission[];
}

/** Who a request runs as: the token's user and the auth revision the token was checked at. */
export interface AuthInfo {
  username: string;
  revision: number;
}

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';
