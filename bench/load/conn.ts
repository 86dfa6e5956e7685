// The transport interface the workloads use, and the choice between the two
// implementations: 'raw' (h2raw.ts, the default) and 'node' (node:http2).
import { RawH2Conn } from './h2raw.js';
import { H2Conn } from './h2conn.js';
import type { Conn } from './conn-types.js';

export type { BidiStream, Conn, UnaryCallback } from './conn-types.js';

export type TransportName = 'raw' | 'node';

export function newConn(transport: TransportName, endpoint: string): Conn {
  return transport === 'node' ? new H2Conn(endpoint) : new RawH2Conn(endpoint);
}
