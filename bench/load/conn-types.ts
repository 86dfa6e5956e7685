// The transport interface the workloads use (implemented by h2raw.ts and h2conn.ts).

/** Client TLS, as etcdctl's --cacert/--cert/--key: PEM file paths (plain data: it travels to worker threads). */
export interface TlsFiles { ca: string; cert: string; key: string }

/** How a session reaches the server: TLS or h2c, and the auth token sent with every call ('' none). */
export interface ConnOptions { tls: TlsFiles | null; token: string }

/** status: 0 ok, >0 grpc-status from the server, -1 transport failure. */
export type UnaryCallback = (status: number, message: string, payload: Buffer | null) => void;

export interface BidiStream {
  write(framed: Buffer): void;
  close(): void;
  readonly closed: boolean;
}

export interface Conn {
  readonly endpoint: string;
  connect(timeoutMs?: number): Promise<void>;
  unary(path: string, framed: Buffer, cb: UnaryCallback): void;
  unaryAsync(path: string, framed: Buffer): Promise<Buffer>;
  stream(path: string, onMessage: (msg: Buffer) => void, onEnd: (status: number, message: string) => void): BidiStream;
  close(): void;
  /** Sends `token` as the "token" metadata of every later call (etcd's auth token). */
  setToken(token: string): void;
}
