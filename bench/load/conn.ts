// The transport interface the workloads use, and the choice between the two
// implementations: 'raw' (h2raw.ts, the default) and 'node' (node:http2).
import { RawH2Conn } from './h2raw.js';
import { H2Conn } from './h2conn.js';
import type { Conn, TlsFiles } from './conn-types.js';

export type { BidiStream, Conn, ConnOptions, TlsFiles, UnaryCallback } from './conn-types.js';

export type TransportName = 'raw' | 'node';

export function newConn(transport: TransportName, endpoint: string, tls: TlsFiles | null = null): Conn {
  return transport === 'node' ? new H2Conn(endpoint, tls) : new RawH2Conn(endpoint, tls);
}
