import { createHash } from 'node:crypto';

// etcd derives member and cluster IDs from configuration (membership.NewMember
// and RaftCluster.genID), so a fresh etsd gets the same IDs etcd would.

/** Member ID: first 8 bytes of sha1(sorted peer URLs joined + cluster token). */
export function computeMemberId(peerUrls: string[], clusterToken: string): bigint {
  const joined = [...peerUrls].sort().join('');
  const hash = createHash('sha1').update(joined + clusterToken, 'utf8').digest();
  return hash.readBigUInt64BE(0);
}

/** Cluster ID: first 8 bytes of sha1 over the sorted member IDs, 8 bytes each. */
export function computeClusterId(memberIds: bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, i * 8));
  return createHash('sha1').update(buf).digest().readBigUInt64BE(0);
}

export function formatId(id: bigint): string {
  return id.toString(16);
}
