// Watch and Lease clients for integration tests: grpc-js with raw bytes,
// messages encoded and decoded with protobufjs from our .proto files (the
// reference codec, independent of the server's hand-written one). A
// WatchStream keeps every response it receives, in order, and can pause
// reading (a slow client) or be cut mid-flight (call.cancel()).

import * as grpc from '@grpc/grpc-js';
import { messageType } from '../../src/proto/registry.js';
import { GrpcError } from './kv-client.js';

const identity = (b: Buffer): Buffer => b;
const DEFAULT_DEADLINE_MS = 10_000;
const WAIT_POLL_MS = 5;

export const WATCH_PATH = '/etcdserverpb.Watch/Watch';
export const LEASE_PATHS = {
  grant: '/etcdserverpb.Lease/LeaseGrant',
  revoke: '/etcdserverpb.Lease/LeaseRevoke',
  keepAlive: '/etcdserverpb.Lease/LeaseKeepAlive',
  timeToLive: '/etcdserverpb.Lease/LeaseTimeToLive',
  leases: '/etcdserverpb.Lease/LeaseLeases',
} as const;

export const FILTER_NOPUT = 0;
export const FILTER_NODELETE = 1;
export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

export interface Kv { key: Buffer; value: Buffer; createRevision: number; modRevision: number; version: number; lease: bigint }
export interface WatchEvent { type: number; kv: Kv; prevKv: Kv | null }
export interface WatchResp {
  revision: number; watchId: number; created: boolean; canceled: boolean; compactRevision: number;
  cancelReason: string; fragment: boolean; events: WatchEvent[];
}

export interface CreateOpts {
  key: Buffer; rangeEnd?: Buffer; startRevision?: number; prevKv?: boolean; filters?: number[];
  watchId?: number; fragment?: boolean; progressNotify?: boolean;
}

/** A fresh grpc-js client on its own connection (no subchannel shared with other clients). */
export function newClient(endpoint: string): grpc.Client {
  return new grpc.Client(endpoint, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': 200,
  });
}

function encode(type: string, obj: Record<string, unknown>): Buffer {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

function decodeObj(type: string, buf: Buffer): Record<string, unknown> {
  const t = messageType(type);
  return t.toObject(t.decode(buf), { longs: String, bytes: Buffer, defaults: true, arrays: true }) as Record<string, unknown>;
}

export function encodeCreate(c: CreateOpts): Buffer {
  return encode('etcdserverpb.WatchRequest', {
    createRequest: {
      key: c.key, rangeEnd: c.rangeEnd ?? Buffer.alloc(0), startRevision: c.startRevision ?? 0, prevKv: c.prevKv ?? false,
      filters: c.filters ?? [], watchId: c.watchId ?? 0, fragment: c.fragment ?? false, progressNotify: c.progressNotify ?? false,
    },
  });
}

export function encodeCancel(watchId: number): Buffer {
  return encode('etcdserverpb.WatchRequest', { cancelRequest: { watchId } });
}

export function encodeProgress(): Buffer {
  return encode('etcdserverpb.WatchRequest', { progressRequest: {} });
}

function toKv(o: Record<string, unknown>): Kv {
  return {
    key: o['key'] as Buffer, value: o['value'] as Buffer, createRevision: Number(o['createRevision']),
    modRevision: Number(o['modRevision']), version: Number(o['version']), lease: BigInt(o['lease'] as string),
  };
}

export function decodeWatchResp(buf: Buffer): WatchResp {
  const t = messageType('etcdserverpb.WatchResponse');
  const msg = t.decode(buf) as unknown as { prevKv?: unknown; events?: { prevKv?: unknown }[] };
  const o = decodeObj('etcdserverpb.WatchResponse', buf);
  const events = (o['events'] as Record<string, unknown>[]).map((e, i) => ({
    type: Number(e['type']),
    kv: toKv(e['kv'] as Record<string, unknown>),
    // `defaults: true` fills absent messages with null; check the decoded message for presence.
    prevKv: msg.events?.[i]?.prevKv ? toKv(e['prevKv'] as Record<string, unknown>) : null,
  }));
  const header = o['header'] as Record<string, unknown> | null;
  return {
    revision: header ? Number(header['revision']) : 0,
    watchId: Number(o['watchId']), created: o['created'] as boolean, canceled: o['canceled'] as boolean,
    compactRevision: Number(o['compactRevision']), cancelReason: o['cancelReason'] as string,
    fragment: o['fragment'] as boolean, events,
  };
}

/** One Watch call: every response is kept in `responses`, in arrival order. */
export class WatchStream {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly responses: WatchResp[] = [];
  /** Set when the call ended (error or end of stream). */
  ended: Error | null | undefined = undefined;
  private listeners: ((r: WatchResp) => void)[] = [];

  constructor(readonly client: grpc.Client) {
    this.call = client.makeBidiStreamRequest<Buffer, Buffer>(WATCH_PATH, identity, identity);
    this.call.on('data', (b: Buffer) => {
      const r = decodeWatchResp(b);
      this.responses.push(r);
      for (const l of this.listeners) l(r);
    });
    this.call.on('error', (e) => { this.ended = e; });
    this.call.on('end', () => { if (this.ended === undefined) this.ended = null; });
  }

  onResponse(l: (r: WatchResp) => void): void { this.listeners.push(l); }

  send(req: Buffer): void { this.call.write(req); }

  /** Creates a watcher and waits for its created response (creates are answered in order). */
  async create(c: CreateOpts, timeoutMs = DEFAULT_DEADLINE_MS): Promise<WatchResp> {
    const before = this.responses.length;
    this.send(encodeCreate(c));
    return this.waitFor((r, i) => i >= before && r.created, timeoutMs, `created response for ${c.key.toString()}`);
  }

  /** Waits for a response (searching from the start) matching pred. */
  async waitFor(pred: (r: WatchResp, index: number) => boolean, timeoutMs: number, what: string): Promise<WatchResp> {
    const deadline = Date.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.responses.length; from++) if (pred(this.responses[from]!, from)) return this.responses[from]!;
      if (this.ended !== undefined) throw new Error(`watch stream ended (${String(this.ended)}) while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  }

  /** Cuts the call mid-flight, as a client that goes away does. */
  cut(): void { this.call.cancel(); }

  close(): void {
    try { this.call.end(); } catch { /* already closed */ }
    this.call.cancel();
  }
}

/** Lease calls (unary) and keep-alive streams. */
export class LeaseClient {
  constructor(readonly client: grpc.Client) {}

  private unary(path: string, req: Buffer, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(path, identity, identity, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs },
        (err, res) => (err ? reject(new GrpcError(err.code, err.details, path)) : resolve(res ?? Buffer.alloc(0))));
    });
  }

  async grant(ttl: number, id = 0n): Promise<{ id: bigint; ttl: number; revision: number }> {
    const o = decodeObj('etcdserverpb.LeaseGrantResponse', await this.unary(LEASE_PATHS.grant, encode('etcdserverpb.LeaseGrantRequest', { TTL: ttl, ID: id.toString() })));
    if (o['error']) throw new Error(`LeaseGrant error: ${String(o['error'])}`);
    return { id: BigInt(o['ID'] as string), ttl: Number(o['TTL']), revision: Number((o['header'] as Record<string, unknown>)['revision']) };
  }

  async revoke(id: bigint): Promise<number> {
    const o = decodeObj('etcdserverpb.LeaseRevokeResponse', await this.unary(LEASE_PATHS.revoke, encode('etcdserverpb.LeaseRevokeRequest', { ID: id.toString() })));
    return Number((o['header'] as Record<string, unknown>)['revision']);
  }

  async timeToLive(id: bigint, keys = false): Promise<{ ttl: number; grantedTtl: number; keys: Buffer[] }> {
    const o = decodeObj('etcdserverpb.LeaseTimeToLiveResponse',
      await this.unary(LEASE_PATHS.timeToLive, encode('etcdserverpb.LeaseTimeToLiveRequest', { ID: id.toString(), keys })));
    return { ttl: Number(o['TTL']), grantedTtl: Number(o['grantedTTL']), keys: o['keys'] as Buffer[] };
  }

  async leases(): Promise<bigint[]> {
    const o = decodeObj('etcdserverpb.LeaseLeasesResponse', await this.unary(LEASE_PATHS.leases, encode('etcdserverpb.LeaseLeasesRequest', {})));
    return (o['leases'] as Record<string, unknown>[]).map((l) => BigInt(l['ID'] as string));
  }

  /** A LeaseKeepAlive stream; ttls receives the TTL of every response. */
  keepAliveStream(): { send(id: bigint): void; responses: { id: bigint; ttl: number }[]; close(): void } {
    const call = this.client.makeBidiStreamRequest<Buffer, Buffer>(LEASE_PATHS.keepAlive, identity, identity);
    const responses: { id: bigint; ttl: number }[] = [];
    call.on('data', (b: Buffer) => {
      const o = decodeObj('etcdserverpb.LeaseKeepAliveResponse', b);
      responses.push({ id: BigInt(o['ID'] as string), ttl: Number(o['TTL']) });
    });
    call.on('error', () => undefined);
    return {
      send: (id) => { call.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id.toString() })); },
      responses,
      close: () => { try { call.end(); } catch { /* closed */ } call.cancel(); },
    };
  }
}
