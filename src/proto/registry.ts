// Loads etsd's .proto files (src/proto/**) with protobufjs and describes the
// services in them. Used by the gRPC layer to register handlers and by tests
// as the reference codec. The .proto files are not copied into dist/, so the
// include root is found from the package root, whether this module runs from
// src/proto/ or dist/src/proto/.

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export interface MethodInfo {
  name: string;
  /** gRPC path, e.g. '/etcdserverpb.KV/Range'. */
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  /** Fully qualified, without a leading dot, e.g. 'etcdserverpb.RangeRequest'. */
  requestType: string;
  responseType: string;
}

export interface ServiceInfo {
  /** e.g. 'etcdserverpb.KV'. */
  fullName: string;
  methods: MethodInfo[];
}

export const PROTO_FILES: readonly string[] = [
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
];

/** The directory holding the .proto files (the include root for imports). */
export function protoIncludeRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 16; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      const root = join(dir, 'src', 'proto');
      if (existsSync(join(root, 'etcdserverpb', 'rpc.proto'))) return root;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`etsd: cannot find src/proto/etcdserverpb/rpc.proto above ${fileURLToPath(import.meta.url)}`);
}

let cachedRoot: protobuf.Root | null = null;
let cachedServices: ServiceInfo[] | null = null;

/** The protobufjs Root with every etsd .proto loaded and resolved (cached). */
export function protoRoot(): protobuf.Root {
  if (cachedRoot !== null) return cachedRoot;
  const include = protoIncludeRoot();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    isAbsolute(target) ? target : join(include, target);
  root.loadSync(PROTO_FILES as string[], { keepCase: false });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

function stripDot(name: string): string {
  return name.startsWith('.') ? name.slice(1) : name;
}

/** A message type by its fully qualified name, e.g. 'etcdserverpb.PutRequest'. */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(stripDot(fullName));
}

function collectServices(ns: protobuf.NamespaceBase, out: protobuf.Service[]): void {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Service) out.push(obj);
    else if (obj instanceof protobuf.Namespace) collectServices(obj, out);
  }
}

/** Every service in the loaded files, in declaration order within each package. */
export function listServices(): ServiceInfo[] {
  if (cachedServices !== null) return cachedServices;
  const services: protobuf.Service[] = [];
  collectServices(protoRoot(), services);
  cachedServices = services.map((svc) => {
    const fullName = stripDot(svc.fullName);
    return {
      fullName,
      methods: svc.methodsArray.map((m) => {
        m.resolve();
        return {
          name: m.name,
          path: `/${fullName}/${m.name}`,
          requestStream: m.requestStream === true,
          responseStream: m.responseStream === true,
          requestType: stripDot(m.resolvedRequestType!.fullName),
          responseType: stripDot(m.resolvedResponseType!.fullName),
        };
      }),
    };
  });
  return cachedServices;
}
