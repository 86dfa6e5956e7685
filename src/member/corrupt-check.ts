// etcd's --experimental-initial-corrupt-check: before a member that has data
// joins raft again, it compares its HashKV at its own revision with every
// peer's (GET /members/hashkv on the peer port, JSON as etcd sends it). A peer
// with the same compact revision and another hash means the data differ: the
// member refuses to start. A peer behind us, ahead of our compaction or not
// reachable is only a warning, as in etcd.
import { peerGet, readBody } from '../tls/peer-get.js';
import type { TlsSide } from '../tls/side.js';
import type { Logger } from '../common/log.js';
import { formatId } from '../common/ids.js';
import type { HashResult } from './maintenance-jobs.js';

/** etcd's path and the mvcc error texts its client side recognises. */
export const PEER_HASHKV_PATH = '/members/hashkv';
export const MVCC_COMPACTED = 'mvcc: required revision has been compacted';
export const MVCC_FUTURE_REV = 'mvcc: required revision is a future revision';

export interface PeerHashKV { revision: number; hash: number; compactRevision: number }

export class CorruptionError extends Error {
  override name = 'CorruptionError';
}

export interface CorruptCheckDeps {
  memberId: bigint;
  /** Every other member's peer URLs. */
  peers: { id: bigint; urls: string[] }[];
  hashKV(revision: number): Promise<HashResult>;
  timeoutMs: number;
  log: Logger;
  /** Peer TLS for https:// peer URLs (null: plain http only). */
  peerTls: TlsSide | null;
}

/** Throws CorruptionError when a peer holds other data at the same revision and compaction. */
export async function checkInitialHashKV(d: CorruptCheckDeps): Promise<void> {
  const local = formatId(d.memberId);
  d.log.info({ 'local-member-id': local, timeout: `${d.timeoutMs}ms` }, 'starting initial corruption check');
  const own = await d.hashKV(0);
  const rev = own.hashRevision || own.currentRevision;
  let mismatch = 0;
  for (const p of d.peers) {
    const fields = {
      'local-member-id': local, 'local-member-revision': rev, 'local-member-compact-revision': own.compactRevision,
      'local-member-hash': own.hash, 'remote-peer-id': formatId(p.id), 'remote-peer-endpoints': p.urls,
    };
    const { got, lastErr } = await askPeerHashKV(p.urls, rev, d);
    if (got) {
      const withPeer = { ...fields, 'remote-peer-revision': got.revision, 'remote-peer-compact-revision': got.compactRevision, 'remote-peer-hash': got.hash };
      if (got.hash !== own.hash) {
        if (got.compactRevision === own.compactRevision) {
          d.log.warn(withPeer, 'found different hash values from remote peer');
          mismatch++;
        } else {
          d.log.warn(withPeer, 'found different compact revision values from remote peer');
        }
      }
    } else if (lastErr?.message.includes(MVCC_FUTURE_REV)) {
      d.log.warn(fields, 'cannot fetch hash from slow remote peer');
    } else if (lastErr?.message.includes(MVCC_COMPACTED)) {
      d.log.warn(fields, 'cannot fetch hash from remote peer; local member is behind');
    }
  }
  if (mismatch > 0) throw new CorruptionError(`${local} found data inconsistency with peers`);
  d.log.info({ 'local-member-id': local }, 'initial corruption checking passed; no corruption');
}

/** One peer's HashKV at `rev`, from the first of its URLs that answers; each failure is logged as etcd logs it. */
export async function askPeerHashKV(urls: string[], rev: number, d: Pick<CorruptCheckDeps, 'memberId' | 'timeoutMs' | 'peerTls' | 'log'>): Promise<{ got: PeerHashKV | null; lastErr: Error | null }> {
  let lastErr: Error | null = null;
  for (const url of urls) {
    try {
      return { got: await fetchPeerHashKV(url, rev, d.timeoutMs, d.peerTls), lastErr: null };
    } catch (err) {
      lastErr = err instanceof Error ? err : new Error(String(err));
      d.log.warn({ 'local-member-id': formatId(d.memberId), 'requested-revision': rev, 'remote-peer-endpoint': url, err: lastErr.message }, 'failed hash kv request');
    }
  }
  return { got: null, lastErr };
}

/** etcd's getPeerHashKVHTTP: a GET with a JSON HashKVRequest body; 400 carries the mvcc error text. */
export async function fetchPeerHashKV(baseUrl: string, revision: number, timeoutMs: number, side: TlsSide | null): Promise<PeerHashKV> {
  const body = JSON.stringify({ revision });
  const res = await peerGet(new URL(PEER_HASHKV_PATH, baseUrl), side, timeoutMs,
    { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }, body);
  const text = await readBody(res);
  if (res.statusCode !== 200) throw new Error(`unknown error: ${text.trim()}`);
  const j = JSON.parse(text) as { header?: { revision?: number | string }; hash?: number; compact_revision?: number | string };
  return { revision: Number(j.header?.revision ?? 0), hash: Number(j.hash ?? 0), compactRevision: Number(j.compact_revision ?? 0) };
}

/** The peer side: etcd's hashKVHandler answer for a request body, as [status, body]. */
export async function answerPeerHashKV(body: string, hashKV: (rev: number) => Promise<HashResult>): Promise<[number, string]> {
  let revision: number;
  try {
    const j = JSON.parse(body === '' ? '{}' : body) as { revision?: unknown };
    revision = Number(j.revision ?? 0);
    if (!Number.isSafeInteger(revision)) throw new Error('bad revision');
  } catch {
    return [400, 'error unmarshalling request\n']; // etcd's words; the request is the peer's problem, not ours
  }
  try {
    const r = await hashKV(revision);
    const resp: Record<string, unknown> = { header: { revision: r.currentRevision } };
    if (r.hash !== 0) resp['hash'] = r.hash;
    if (r.compactRevision !== 0) resp['compact_revision'] = r.compactRevision;
    return [200, JSON.stringify(resp)];
  } catch (err) {
    // etcd answers the mvcc error's own text (without the "etcdserver: " of the gRPC error).
    const msg = err instanceof Error ? err.message.replace(/^etcdserver: /, '') : String(err);
    return [400, msg + '\n'];
  }
}
