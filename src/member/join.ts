// Joining a running cluster (--initial-cluster-state existing): like etcd's
// GetClusterFromRemotePeers, ask the other peers for the membership (GET
// /members on their peer URLs) to learn the cluster id and the id the cluster
// gave this member when it was added (etcdctl member add).
import type { Config } from '../common/config.js';
import { memberFromJson, type MemberRecord } from './membership.js';
import { peerGet, readBody } from '../tls/peer-get.js';
import type { TlsSide } from '../tls/side.js';

export interface JoinInfo { clusterId: bigint; memberId: bigint; members: MemberRecord[] }

export class JoinError extends Error {
  override name = 'JoinError';
}

const ATTEMPT_TIMEOUT_MS = 2000;

export async function fetchClusterFromPeers(cfg: Config, peerTls: TlsSide | null, deadlineMs = 30_000): Promise<JoinInfo> {
  const own = new Set(cfg.initialAdvertisePeerUrls);
  const urls = [...cfg.initialCluster.values()].flat().filter((u) => !own.has(u));
  if (urls.length === 0) throw new JoinError('cannot join an existing cluster: --initial-cluster names no other member');
  const deadline = Date.now() + deadlineMs;
  const failures: string[] = [];
  for (;;) {
    for (const u of urls) {
      try {
        // node:http(s), not fetch: https needs our peer certificate as the client certificate.
        const res = await peerGet(new URL('/members', u), peerTls, ATTEMPT_TIMEOUT_MS);
        const body = await readBody(res);
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
        const cid = res.headers['x-etcd-cluster-id'];
        if (typeof cid !== 'string' || cid === '') throw new Error('no X-Etcd-Cluster-ID header');
        const members = (JSON.parse(body) as Parameters<typeof memberFromJson>[0][]).map(memberFromJson);
        const self = members.find((m) => m.peerUrls.length > 0 && m.peerUrls.every((p) => own.has(p)) && own.size === m.peerUrls.length);
        if (!self) {
          throw new JoinError(`member with peer URLs ${cfg.initialAdvertisePeerUrls.join(',')} is not in the cluster (add it with "etcdctl member add" first)`);
        }
        return { clusterId: BigInt('0x' + cid), memberId: self.id, members };
      } catch (err) {
        if (err instanceof JoinError) throw err;
        failures.push(`${u}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (Date.now() > deadline) {
      throw new JoinError(`could not retrieve cluster information from the given URLs: ${failures.slice(-urls.length).join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
