// etcd 3.4 answers every RPC on a learner with "rpc not supported for learner"
// except Maintenance.Status and serializable KV.Range (v3rpc's
// isRPCSupportedForLearner); streams are refused outright. Range checks the
// serializable flag itself (Member.range), so it passes here.
import { Errors } from '../common/errors.js';
import type { StreamHandler, UnaryHandler } from '../grpc/rpc.js';

const ALLOWED = new Set(['/etcdserverpb.Maintenance/Status', '/etcdserverpb.KV/Range']);

export function gateUnary(handlers: Map<string, UnaryHandler>, isLearner: () => boolean): Map<string, UnaryHandler> {
  const out = new Map<string, UnaryHandler>();
  for (const [path, h] of handlers) {
    out.set(path, ALLOWED.has(path) ? h : (req, ctx) => {
      if (isLearner()) throw Errors.notSupportedForLearner();
      return h(req, ctx);
    });
  }
  return out;
}

export function gateStreams(handlers: Map<string, StreamHandler>, isLearner: () => boolean): Map<string, StreamHandler> {
  const out = new Map<string, StreamHandler>();
  for (const [path, h] of handlers) {
    out.set(path, (call) => {
      if (isLearner()) call.end(Errors.notSupportedForLearner());
      else h(call);
    });
  }
  return out;
}
