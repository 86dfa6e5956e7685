import type { EtcdError } from '../common/errors.js';

/** A bidirectional gRPC stream as the services see it, whatever the transport. */
export interface BidiStream {
  onMessage(cb: (msg: Buffer) => void): void;
  /** The client closed its side, cancelled, or the connection went away (called once). */
  onEnd(cb: () => void): void;
  /** The client cancelled or the connection went away; a half-close is not a cancel (called once). */
  onCancel(cb: () => void): void;
  /** False when the transport's buffer is full: wait for onDrain before writing more. */
  write(msg: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(err?: EtcdError): void;
  /** The call's `token` (or `authorization`) metadata, for auth; absent without one. */
  readonly token?: string;
  /** CN of the client's verified TLS certificate, for cert-based auth (as CallContext.peerCommonName). */
  readonly peerCommonName?: string | null;
}

export type StreamHandler = (stream: BidiStream) => void;
