// grpc_server_started_total and grpc_server_handled_total, as etcd exports them
// through go-grpc-prometheus: per method, with its service, type and (for
// handled) the status code. Counted by the gRPC server (src/grpc/server.ts)
// where a handler is called and where its call ends; read by /metrics.
// A plain counter per method and code: no allocation on the request path.

import { listServices } from '../proto/registry.js';

/** grpc-go's names of the status codes, in code order (0..16). */
export const GRPC_CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
] as const;

export type GrpcMethodType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** One method's counters. */
export class MethodCounters {
  started = 0;
  /** Calls ended, by status code. */
  readonly handled = new Float64Array(GRPC_CODE_NAMES.length);

  constructor(readonly service: string, readonly method: string, readonly type: GrpcMethodType) {}

  ended(code: number): void {
    if (code >= 0 && code < this.handled.length) this.handled[code]!++;
  }
}

/** Every method of etsd's protos, counted from zero as go-grpc-prometheus pre-registers them. */
export class CallCounters {
  private readonly byPath = new Map<string, MethodCounters>();

  constructor() {
    for (const s of listServices()) {
      for (const m of s.methods) {
        const type: GrpcMethodType = m.requestStream ? (m.responseStream ? 'bidi_stream' : 'client_stream') : (m.responseStream ? 'server_stream' : 'unary');
        this.byPath.set(m.path, new MethodCounters(s.fullName, m.name, type));
      }
    }
  }

  /** The counters of a gRPC path; null for a path that is no method of ours. */
  of(path: string): MethodCounters | null {
    return this.byPath.get(path) ?? null;
  }

  all(): Iterable<MethodCounters> {
    return this.byPath.values();
  }
}
