// The one place that knows etcd's gRPC error codes and messages. Clients map
// errors back by exact message text, so these strings must match etcd's
// api/v3rpc/rpctypes (and grpc-go's, for transport errors) word for word.
// It sits below every layer: storage and workers raise these, and only the
// gRPC server turns them into a status on the wire.

export const enum GrpcCode {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** An error with the gRPC status an etcd server would answer. */
export class EtcdError extends Error {
  constructor(readonly code: GrpcCode, message: string) {
    super(message);
    this.name = 'EtcdError';
  }
}

const def = (code: GrpcCode, message: string) => () => new EtcdError(code, message);

export const Errors = {
  emptyKey: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  invalidSortOption: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: invalid sort option'),
  compacted: def(GrpcCode.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: def(GrpcCode.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: def(GrpcCode.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  corrupt: def(GrpcCode.DATA_LOSS, 'etcdserver: corrupt cluster'),
  leaseNotFound: def(GrpcCode.NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExists: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: def(GrpcCode.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  requestTooLarge: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  tooManyRequests: def(GrpcCode.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  noLeader: def(GrpcCode.UNAVAILABLE, 'etcdserver: no leader'),
  leaderChanged: def(GrpcCode.UNAVAILABLE, 'etcdserver: leader changed'),
  notLeader: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: not leader'),
  badLeaderTransferee: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  leaderTransferTimeout: def(GrpcCode.UNAVAILABLE, 'etcdserver: request timed out, leader transfer took too long'),
  stopped: def(GrpcCode.UNAVAILABLE, 'etcdserver: server stopped'),
  peerUrlExists: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  notEnoughStartedMembers: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: re-configuration failed due to not enough started members'),
  memberNotLearner: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader'),
  tooManyLearners: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),
  memberBadUrls: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  memberNotFound: def(GrpcCode.NOT_FOUND, 'etcdserver: member not found'),
  notSupportedForLearner: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: rpc not supported for learner'),
  unhealthy: def(GrpcCode.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  timeout: def(GrpcCode.UNAVAILABLE, 'etcdserver: request timed out'),
  /** v3election's own texts (etcd answers them as UNKNOWN). */
  electionNotLeader: def(GrpcCode.UNKNOWN, 'election: not leader'),
  electionNoLeader: def(GrpcCode.UNKNOWN, 'election: no leader'),
  electionMissingLeader: def(GrpcCode.UNKNOWN, '"leader" field must be provided'),
  // Auth (api/v3rpc/rpctypes/error.go, mapped from auth/store.go's errors by v3rpc/util.go).
  rootUserNotExist: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  rootRoleNotExist: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  userAlreadyExist: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  userEmpty: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  userNotFound: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: user name not found'),
  roleAlreadyExist: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  roleNotFound: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: role name not found'),
  roleEmpty: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: role name is empty'),
  authFailed: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'),
  permissionDenied: def(GrpcCode.PERMISSION_DENIED, 'etcdserver: permission denied'),
  roleNotGranted: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'),
  authNotEnabled: def(GrpcCode.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: def(GrpcCode.UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: invalid auth management'),
  authOldRevision: def(GrpcCode.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'),
  /** Not in v3rpc's table: grpc-go answers it as UNKNOWN with auth's own text. */
  noPasswordUser: def(GrpcCode.UNKNOWN, 'auth: authentication failed, password was given for no password user'),
  /** Authenticate on a member with only a JWT public key; not in v3rpc's table either. */
  jwtVerifyOnly: def(GrpcCode.UNKNOWN, 'auth: token signing attempted with verify-only key'),
  unimplemented: (method: string) =>
    new EtcdError(GrpcCode.UNIMPLEMENTED, `etsd: ${method} is not implemented yet`),
  /** etsd's own: Defragment compacts RocksDB through the native addon, and there is no other way. */
  defragUnavailable: (reason: string) =>
    new EtcdError(GrpcCode.UNIMPLEMENTED, `etsd: Defragment needs the etsd native addon's RocksDB access, which is unavailable: ${reason}`),

  // grpc-go's transport and framing texts, as a Go client would get them from etcd.
  /** A message over the receive limit. */
  messageTooLarge: (got: number, max: number) =>
    new EtcdError(GrpcCode.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${got} vs. ${max})`),
  malformed: (what: string) =>
    new EtcdError(GrpcCode.INTERNAL, `grpc: error unmarshalling request: ${what}`),
  decompressorMissing: (encoding: string) =>
    new EtcdError(GrpcCode.UNIMPLEMENTED, `grpc: Decompressor is not installed for grpc-encoding "${encoding}"`),
  compressedWithoutEncoding: def(GrpcCode.INTERNAL, 'grpc: compressed flag set with identity or empty encoding'),
  unexpectedPayloadFormat: (flag: number) => new EtcdError(GrpcCode.INTERNAL, `grpc: received unexpected payload format ${flag}`),
  /** The stream ended in the middle of a message (grpc-go: io.ErrUnexpectedEOF). */
  truncatedMessage: def(GrpcCode.INTERNAL, 'grpc: request ended in the middle of a message: unexpected EOF'),
  /** A unary call whose request stream ended without any message. */
  missingMessage: def(GrpcCode.INTERNAL, 'grpc: request ended without a message: unexpected EOF'),
  malformedTimeout: (value: string) => new EtcdError(GrpcCode.INTERNAL, `transport: malformed grpc-timeout: ${value}`),
  deadlineExceeded: def(GrpcCode.DEADLINE_EXCEEDED, 'context deadline exceeded'),
  malformedMethod: (path: string) => new EtcdError(GrpcCode.UNIMPLEMENTED, `malformed method name: ${JSON.stringify(path)}`),
  unknownMethod: (method: string, service: string) => new EtcdError(GrpcCode.UNIMPLEMENTED, `unknown method ${method} for service ${service}`),
  unknownService: (service: string) => new EtcdError(GrpcCode.UNIMPLEMENTED, `unknown service ${service}`),
  /** Anything else a handler threw: grpc-go answers UNKNOWN with the error's text. */
  unknown: (message: string) => new EtcdError(GrpcCode.UNKNOWN, message),
} as const;

/** Wire form used between threads: 1 byte code + UTF-8 message. */
export function encodeError(err: EtcdError): Buffer {
  const msg = Buffer.from(err.message, 'utf8');
  const out = Buffer.allocUnsafe(1 + msg.length);
  out[0] = err.code;
  msg.copy(out, 1);
  return out;
}

export function decodeError(buf: Uint8Array): EtcdError {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return new EtcdError(b[0] as GrpcCode, b.toString('utf8', 1));
}

/**
 * etcd's auth package texts behind the v3rpc ones. etcd's authMaintenanceServer
 * (Defragment, Hash, HashKV, Snapshot) returns auth errors untranslated, so
 * grpc-go answers them UNKNOWN with these texts, e.g. "auth: permission denied".
 */
const AUTH_PACKAGE_TEXT: ReadonlyMap<string, string> = new Map([
  ['etcdserver: user name is empty', 'auth: user name is empty'],
  ['etcdserver: user name not found', 'auth: user not found'],
  ['etcdserver: permission denied', 'auth: permission denied'],
  ['etcdserver: invalid auth token', 'auth: invalid auth token'],
  ['etcdserver: revision of auth store is old', 'auth: revision in header is old'],
]);

/** An auth error as a handler that does not translate it answers it; other errors unchanged. */
export function untranslatedAuthError(err: EtcdError): EtcdError {
  const text = AUTH_PACKAGE_TEXT.get(err.message);
  return text === undefined ? err : Errors.unknown(text);
}
