// The transport interface the workloads use, and the choice between the two
// implementations: 'raw' (h2raw.ts, the default) and 'node' (node:http2).
import { RawH2Conn } from './h2raw.js';
import { H2Conn } from './h2conn.js';

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
}

export type TransportName = 'raw' | 'node';

export function newConn(transport: TransportName, endpoint: string): Conn {
  return transport === 'node' ? new H2Conn(endpoint) : new RawH2Conn(endpoint);
}
