// Who this member is: its id, the cluster's id and the initial membership,
// decided at the first start (from the flags, as etcd derives them, or from
// the running cluster when joining) and kept in member/ids.json (etcd keeps
// the same in its WAL metadata).

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../common/config.js';
import { computeClusterId, computeMemberId, formatId } from '../common/ids.js';
import { fetchClusterFromPeers } from './join.js';
import type { MemberRecord } from './membership.js';
import type { TlsSide } from '../tls/side.js';
import { fsyncDir } from '../common/fsync-dir.js';

export interface StoredIdentity {
  memberId: bigint; clusterId: bigint; members: MemberRecord[]; joined: boolean;
  /** Read from an existing data dir (etcd's memberInitialized): only then is there data to check against peers. */
  existed: boolean;
}

interface StoredIds {
  memberId: string; clusterId: string; joined?: boolean;
  members?: { id: string; name: string; peerUrls: string[]; clientUrls?: string[]; isLearner?: boolean }[];
}

/** Reads ids.json, or makes the identity and stores it durably before anything else is written. */
export async function loadOrCreateIdentity(memberDir: string, cfg: Config, peerTls: TlsSide | null): Promise<StoredIdentity> {
  const file = join(memberDir, 'ids.json');
  if (existsSync(file)) {
    const s = JSON.parse(readFileSync(file, 'utf8')) as StoredIds;
    const memberId = BigInt('0x' + s.memberId);
    const members: MemberRecord[] = s.members?.map((m) => ({
      id: BigInt('0x' + m.id), name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls ?? [], isLearner: m.isLearner === true,
    })) ?? [{ id: memberId, name: cfg.name, peerUrls: cfg.initialAdvertisePeerUrls, clientUrls: [], isLearner: false }];
    return { memberId, clusterId: BigInt('0x' + s.clusterId), members, joined: s.joined === true, existed: true };
  }
  let ids: StoredIdentity;
  if (cfg.initialClusterState === 'existing') {
    const j = await fetchClusterFromPeers(cfg, peerTls);
    ids = { memberId: j.memberId, clusterId: j.clusterId, members: j.members, joined: true, existed: false };
  } else {
    const members: MemberRecord[] = [...cfg.initialCluster].map(([name, urls]) => ({
      id: computeMemberId(urls, cfg.initialClusterToken), name, peerUrls: urls, clientUrls: [], isLearner: false,
    }));
    const memberId = computeMemberId(cfg.initialAdvertisePeerUrls, cfg.initialClusterToken);
    if (!members.some((m) => m.id === memberId)) {
      throw new Error(`--initial-advertise-peer-urls ${cfg.initialAdvertisePeerUrls.join(',')} do not match the URLs of "${cfg.name}" in --initial-cluster`);
    }
    ids = { memberId, clusterId: computeClusterId(members.map((m) => m.id)), members, joined: false, existed: false };
  }
  storeIdentity(memberDir, ids);
  return ids;
}

/** Writes ids.json durably (also for an identity taken over from an etcd data dir). */
export function storeIdentity(memberDir: string, ids: StoredIdentity): void {
  writeDurably(join(memberDir, 'ids.json'), JSON.stringify({
    memberId: formatId(ids.memberId), clusterId: formatId(ids.clusterId), joined: ids.joined,
    members: ids.members.map((m) => ({ id: formatId(m.id), name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner })),
  } satisfies StoredIds));
}

/** tmp file, fsync, rename, fsync of the directory: a crash leaves the old file or the whole new one. */
function writeDurably(file: string, text: string): void {
  const tmp = file + '.tmp';
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(join(file, '..'));
}
