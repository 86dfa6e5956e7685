// Loads etcd's client API messages (src/proto) with protobufjs and provides
// gRPC length-prefixed framing. Everything here runs at start-up or on the
// cold path; hot loops use pre-encoded bytes (see templates.ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';

// dist/bench/load/proto.js and bench/load/proto.ts are both three levels
// below the repository root.
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PROTO_ROOT = path.join(REPO_ROOT, 'src', 'proto');

export interface Messages {
  RangeRequest: protobuf.Type;
  RangeResponse: protobuf.Type;
  PutRequest: protobuf.Type;
  PutResponse: protobuf.Type;
  TxnRequest: protobuf.Type;
  TxnResponse: protobuf.Type;
  WatchRequest: protobuf.Type;
  WatchResponse: protobuf.Type;
  LeaseGrantRequest: protobuf.Type;
  LeaseGrantResponse: protobuf.Type;
  LeaseKeepAliveRequest: protobuf.Type;
  LeaseKeepAliveResponse: protobuf.Type;
  AuthenticateRequest: protobuf.Type;
  AuthenticateResponse: protobuf.Type;
  AuthUserAddRequest: protobuf.Type;
  AuthUserGrantRoleRequest: protobuf.Type;
  AuthEnableRequest: protobuf.Type;
}

let cached: Messages | null = null;

export function messages(): Messages {
  if (cached) return cached;
  const root = new protobuf.Root();
  // Imports are written relative to src/proto ("mvccpb/kv.proto"). Imports
  // we do not have (e.g. gogoproto options) are skipped by returning null.
  root.resolvePath = (origin: string, target: string): string => {
    const candidates = [path.join(PROTO_ROOT, target), path.resolve(path.dirname(origin), target)];
    for (const c of candidates) if (existsSync(c)) return c;
    return null as unknown as string;
  };
  root.loadSync(path.join(PROTO_ROOT, 'etcdserverpb', 'rpc.proto'));
  const t = (n: string): protobuf.Type => root.lookupType(`etcdserverpb.${n}`);
  cached = {
    RangeRequest: t('RangeRequest'), RangeResponse: t('RangeResponse'),
    PutRequest: t('PutRequest'), PutResponse: t('PutResponse'),
    TxnRequest: t('TxnRequest'), TxnResponse: t('TxnResponse'),
    WatchRequest: t('WatchRequest'), WatchResponse: t('WatchResponse'),
    LeaseGrantRequest: t('LeaseGrantRequest'), LeaseGrantResponse: t('LeaseGrantResponse'),
    LeaseKeepAliveRequest: t('LeaseKeepAliveRequest'), LeaseKeepAliveResponse: t('LeaseKeepAliveResponse'),
    AuthenticateRequest: t('AuthenticateRequest'), AuthenticateResponse: t('AuthenticateResponse'),
    AuthUserAddRequest: t('AuthUserAddRequest'), AuthUserGrantRoleRequest: t('AuthUserGrantRoleRequest'),
    AuthEnableRequest: t('AuthEnableRequest'),
  };
  return cached;
}

/** Encodes `obj` as `type` and wraps it in a 5-byte gRPC frame. */
export function encodeFramed(type: protobuf.Type, obj: Record<string, unknown>): Buffer {
  return frame(type.encode(type.fromObject(obj)).finish());
}

export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/** int64 fields decode as Long (when `long` is installed) or number. */
export function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v ?? 0);
}

export const PATHS = {
  range: '/etcdserverpb.KV/Range',
  put: '/etcdserverpb.KV/Put',
  txn: '/etcdserverpb.KV/Txn',
  watch: '/etcdserverpb.Watch/Watch',
  leaseGrant: '/etcdserverpb.Lease/LeaseGrant',
  leaseKeepAlive: '/etcdserverpb.Lease/LeaseKeepAlive',
  authenticate: '/etcdserverpb.Auth/Authenticate',
  userAdd: '/etcdserverpb.Auth/UserAdd',
  userGrantRole: '/etcdserverpb.Auth/UserGrantRole',
  authEnable: '/etcdserverpb.Auth/AuthEnable',
} as const;
