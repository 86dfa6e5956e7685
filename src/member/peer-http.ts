// HTTP on the peer port, beside the raft transport (which sniffs its own
// preface): GET /members (etcd's membership listing, used by joining members)
// and GET /etsd/snapshot (the state machine for a follower that fell behind
// the leader's compacted log).
import http from 'node:http';
import type net from 'node:net';
import { createReadStream } from 'node:fs';
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import { memberToJson, type MemberRecord } from './membership.js';
import { PEER_HASHKV_PATH, answerPeerHashKV } from './corrupt-check.js';
import type { HashResult } from './maintenance-jobs.js';

/** A snapshot file ready to stream; release() is called once it has been sent (or failed). */
export interface SnapshotFile { path: string; index: number; bytes: number; release(): void }

export interface PeerHttpSource {
  readonly clusterId: bigint;
  memberList(): MemberRecord[];
  /** Only the leader serves snapshots; null elsewhere. */
  openSnapshot(): Promise<SnapshotFile | null>;
  /** A snapshot sent to the member `to` was delivered whole (ok) or not: raft's reportSnapshot. */
  snapshotSent(to: bigint, ok: boolean): void;
  /** HashKV of this member's store at a revision (0: current), for a peer's corruption check. */
  hashKV(revision: number): Promise<HashResult>;
}

/** The header a follower names itself with when it fetches a snapshot, so the leader can report the send. */
export const SNAPSHOT_MEMBER_HEADER = 'x-etsd-member-id';

function memberIdOf(req: http.IncomingMessage): bigint | null {
  const v = req.headers[SNAPSHOT_MEMBER_HEADER];
  return typeof v === 'string' && /^[0-9a-f]{1,16}$/.test(v) ? BigInt('0x' + v) : null;
}

export function createPeerHttpServer(src: PeerHttpSource, log: Logger): http.Server {
  return http.createServer((req, res) => {
    res.setHeader('X-Etcd-Cluster-ID', formatId(src.clusterId));
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/members') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(src.memberList().map(memberToJson)));
      return;
    }
    if (req.method === 'GET' && path === '/etsd/snapshot') {
      const to = memberIdOf(req);
      const report = (ok: boolean) => { if (to !== null) src.snapshotSent(to, ok); };
      src.openSnapshot().then((snap) => {
        if (!snap) {
          res.writeHead(503, { 'Content-Type': 'text/plain' }).end('not the leader\n');
          return;
        }
        // The follower gave up while the file was being made: nothing will close this response again.
        if (res.destroyed) {
          snap.release();
          report(false);
          return;
        }
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(snap.bytes), 'X-Etsd-Snapshot-Index': String(snap.index) });
        const stream = createReadStream(snap.path);
        stream.on('error', (err) => { log.error({ err }, 'reading snapshot file failed'); res.destroy(err); });
        // 'finish': every byte handed to the socket; a close before it is a failed send.
        let sent = false;
        res.on('finish', () => { sent = true; });
        res.on('close', () => { snap.release(); report(sent); });
        stream.pipe(res);
      }, (err: unknown) => {
        log.error({ err }, 'creating a snapshot for a follower failed');
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('snapshot failed\n');
        report(false);
      });
      return;
    }
    if (path === PEER_HASHKV_PATH) {
      if (req.method !== 'GET') {
        res.writeHead(405, { 'Allow': 'GET', 'Content-Type': 'text/plain; charset=utf-8' }).end('Method Not Allowed\n');
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        answerPeerHashKV(Buffer.concat(chunks).toString('utf8'), (rev) => src.hashKV(rev)).then(([status, body]) => {
          res.writeHead(status, { 'Content-Type': status === 200 ? 'application/json' : 'text/plain; charset=utf-8' }).end(body);
        }, (err: unknown) => {
          log.error({ err }, 'answering a peer hash kv request failed');
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('hash kv failed\n');
        });
      });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
  });
}

/** Hands a sniffed socket to the HTTP server, putting back the bytes already read. */
export function handOverToHttp(server: http.Server, socket: net.Socket, head: Buffer): void {
  socket.pause();
  socket.unshift(head);
  server.emit('connection', socket);
  socket.resume();
}
