// A raw gRPC client for the auth tests: unary calls with an optional `token`
// metadata, and the Authenticate request and response by hand.
import * as grpc from '@grpc/grpc-js';
import { ProtoReader, ProtoWriter, WIRE_LDELIM } from '../../src/proto/wire.js';

/** Raw unary calls with an optional token, to see the token and the statuses themselves. */
export class RawClient {
  private readonly c: grpc.Client;
  constructor(endpoint: string) { this.c = new grpc.Client(endpoint, grpc.credentials.createInsecure()); }
  close(): void { this.c.close(); }
  call(path: string, req: Buffer, token?: string): Promise<Buffer> {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set('token', token);
    return new Promise((resolve, reject) => {
      this.c.makeUnaryRequest<Buffer, Buffer>(path, (x) => x, (x) => x, req, md, { deadline: Date.now() + 10_000 },
        (err, res) => (err ? reject(err) : resolve(res ?? Buffer.alloc(0))));
    });
  }
}

export function authenticateRequest(name: string, password: string): Buffer {
  const w = new ProtoWriter(64);
  w.writeTag(1, WIRE_LDELIM); w.writeString(name);
  w.writeTag(2, WIRE_LDELIM); w.writeString(password);
  return w.finish();
}

/** AuthenticateResponse.token (field 2). */
export function tokenOf(res: Buffer): string {
  const r = new ProtoReader(res);
  let token = '';
  while (r.pos < r.end) {
    const t = r.readTag();
    if (t >>> 3 === 2) token = r.readString();
    else r.skipField(t & 7);
  }
  return token;
}

