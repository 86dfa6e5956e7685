// The gateway's routes: etcd 3.4's grpc-gateway table (rpc.pb.gw.go,
// v3lock.pb.gw.go, v3election.pb.gw.go), every one POST. Where two methods
// share a path (/v3/maintenance/hash is Hash and HashKV), the one etcd
// registers first answers: Hash. Old prefixes are rewritten to /v3/ first:
// /v3beta/ as etcd 3.4 does, /v3alpha/ (etcd 3.3's) for clients such as
// Debian's etcd3gw 2.0.0.

import { listServices } from '../proto/registry.js';

export interface GatewayRoute {
  /** gRPC path, e.g. '/etcdserverpb.KV/Range'. */
  grpcPath: string;
  /** e.g. 'Range', for messages. */
  method: string;
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

const TABLE: ReadonlyArray<readonly [string, string]> = [
  ['/v3/kv/range', '/etcdserverpb.KV/Range'],
  ['/v3/kv/put', '/etcdserverpb.KV/Put'],
  ['/v3/kv/deleterange', '/etcdserverpb.KV/DeleteRange'],
  ['/v3/kv/txn', '/etcdserverpb.KV/Txn'],
  ['/v3/kv/compaction', '/etcdserverpb.KV/Compact'],
  ['/v3/watch', '/etcdserverpb.Watch/Watch'],
  ['/v3/lease/grant', '/etcdserverpb.Lease/LeaseGrant'],
  ['/v3/lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['/v3/kv/lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['/v3/lease/keepalive', '/etcdserverpb.Lease/LeaseKeepAlive'],
  ['/v3/lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['/v3/kv/lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['/v3/lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['/v3/kv/lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['/v3/cluster/member/add', '/etcdserverpb.Cluster/MemberAdd'],
  ['/v3/cluster/member/remove', '/etcdserverpb.Cluster/MemberRemove'],
  ['/v3/cluster/member/update', '/etcdserverpb.Cluster/MemberUpdate'],
  ['/v3/cluster/member/list', '/etcdserverpb.Cluster/MemberList'],
  ['/v3/cluster/member/promote', '/etcdserverpb.Cluster/MemberPromote'],
  ['/v3/maintenance/alarm', '/etcdserverpb.Maintenance/Alarm'],
  ['/v3/maintenance/status', '/etcdserverpb.Maintenance/Status'],
  ['/v3/maintenance/defragment', '/etcdserverpb.Maintenance/Defragment'],
  ['/v3/maintenance/hash', '/etcdserverpb.Maintenance/Hash'],
  ['/v3/maintenance/snapshot', '/etcdserverpb.Maintenance/Snapshot'],
  ['/v3/maintenance/transfer-leadership', '/etcdserverpb.Maintenance/MoveLeader'],
  ['/v3/auth/enable', '/etcdserverpb.Auth/AuthEnable'],
  ['/v3/auth/disable', '/etcdserverpb.Auth/AuthDisable'],
  ['/v3/auth/authenticate', '/etcdserverpb.Auth/Authenticate'],
  ['/v3/auth/user/add', '/etcdserverpb.Auth/UserAdd'],
  ['/v3/auth/user/get', '/etcdserverpb.Auth/UserGet'],
  ['/v3/auth/user/list', '/etcdserverpb.Auth/UserList'],
  ['/v3/auth/user/delete', '/etcdserverpb.Auth/UserDelete'],
  ['/v3/auth/user/changepw', '/etcdserverpb.Auth/UserChangePassword'],
  ['/v3/auth/user/grant', '/etcdserverpb.Auth/UserGrantRole'],
  ['/v3/auth/user/revoke', '/etcdserverpb.Auth/UserRevokeRole'],
  ['/v3/auth/role/add', '/etcdserverpb.Auth/RoleAdd'],
  ['/v3/auth/role/get', '/etcdserverpb.Auth/RoleGet'],
  ['/v3/auth/role/list', '/etcdserverpb.Auth/RoleList'],
  ['/v3/auth/role/delete', '/etcdserverpb.Auth/RoleDelete'],
  ['/v3/auth/role/grant', '/etcdserverpb.Auth/RoleGrantPermission'],
  ['/v3/auth/role/revoke', '/etcdserverpb.Auth/RoleRevokePermission'],
  ['/v3/lock/lock', '/v3lockpb.Lock/Lock'],
  ['/v3/lock/unlock', '/v3lockpb.Lock/Unlock'],
  ['/v3/election/campaign', '/v3electionpb.Election/Campaign'],
  ['/v3/election/proclaim', '/v3electionpb.Election/Proclaim'],
  ['/v3/election/leader', '/v3electionpb.Election/Leader'],
  ['/v3/election/observe', '/v3electionpb.Election/Observe'],
  ['/v3/election/resign', '/v3electionpb.Election/Resign'],
];

/** The gateway's routes by HTTP path (after prefix rewriting). */
export function gatewayRoutes(): Map<string, GatewayRoute> {
  const methods = new Map(listServices().flatMap((s) => s.methods.map((m) => [m.path, m] as const)));
  const out = new Map<string, GatewayRoute>();
  for (const [httpPath, grpcPath] of TABLE) {
    const m = methods.get(grpcPath);
    if (m === undefined) throw new Error(`gateway route ${httpPath}: no method ${grpcPath} in src/proto`);
    out.set(httpPath, {
      grpcPath, method: m.name, requestType: m.requestType, responseType: m.responseType,
      requestStream: m.requestStream, responseStream: m.responseStream,
    });
  }
  return out;
}

/** The path etcd's gateway routes on: /v3beta/ and /v3alpha/ become /v3/. Null when not a gateway path. */
export function gatewayPath(urlPath: string): string | null {
  if (urlPath.startsWith('/v3/')) return urlPath;
  if (urlPath.startsWith('/v3beta/')) return '/v3/' + urlPath.slice('/v3beta/'.length);
  if (urlPath.startsWith('/v3alpha/')) return '/v3/' + urlPath.slice('/v3alpha/'.length);
  return null;
}
