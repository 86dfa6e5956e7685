// etcd 3.4's raft snapshot files (member/snap/%016x-%016x.snap, etcdserver/api/snap),
// read-only, for the membership they hold: etcd 3.4 recovers its membership from
// the v2 store inside the newest snapshot (RaftCluster.Recover), not from the db.
//
//   file     snappb.Snapshot { uint32 crc = 1; bytes data = 2 }, crc = CRC-32C(data)
//   data     raftpb.Snapshot { bytes data = 1; SnapshotMetadata metadata = 2
//            { ConfState conf_state = 1; uint64 index = 2; uint64 term = 3 } }
//   v2 store json.Marshal of the store: { "Root": node }, node = { "Path",
//            "Value", "Children": { name: node } }; members under /0/members/<id hex>
//            (raftAttributes {"peerURLs","isLearner"}, attributes {"name","clientURLs"}),
//            removed ids under /0/removed_members/<id hex>

import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '../../native/index.js';
import { ProtoReader, WIRE_LDELIM, WIRE_VARINT } from '../../proto/wire.js';

const SNAP_NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export interface EtcdSnapMember { id: bigint; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }
export interface EtcdSnap { index: number; term: number; members: EtcdSnapMember[]; removed: bigint[]; file: string }

interface V2Node { Value?: string; Children?: Record<string, V2Node> | null }

function fields(b: Buffer, want: Record<number, 'bytes' | 'varint'>): Map<number, Buffer | bigint> {
  const r = new ProtoReader(b);
  const out = new Map<number, Buffer | bigint>();
  while (r.pos < r.end) {
    const t = r.readTag();
    const f = t >>> 3;
    if (want[f] === 'bytes' && (t & 7) === WIRE_LDELIM) out.set(f, r.readBytes());
    else if (want[f] === 'varint' && (t & 7) === WIRE_VARINT) out.set(f, r.readVarintBig());
    else r.skipField(t & 7);
  }
  return out;
}

/** One .snap file: its index, term and the membership in its v2 store. */
export function readEtcdSnap(file: string): EtcdSnap {
  const outer = fields(fs.readFileSync(file), { 1: 'varint', 2: 'bytes' });
  const data = outer.get(2) as Buffer | undefined;
  if (data === undefined) throw new Error(`${file}: empty snapshot`);
  const crc = Number((outer.get(1) as bigint | undefined) ?? 0n);
  if (crc32c(data) !== crc) throw new Error(`${file}: crc mismatch`);
  const snap = fields(data, { 1: 'bytes', 2: 'bytes' });
  const meta = fields((snap.get(2) as Buffer | undefined) ?? Buffer.alloc(0), { 2: 'varint', 3: 'varint' });
  const store = JSON.parse(((snap.get(1) as Buffer | undefined) ?? Buffer.from('{}')).toString('utf8')) as { Root?: V2Node };
  const dir = store.Root?.Children?.['0']?.Children;
  const members: EtcdSnapMember[] = [];
  for (const [hex, node] of Object.entries(dir?.['members']?.Children ?? {})) {
    const raft = JSON.parse(node.Children?.['raftAttributes']?.Value ?? '{}') as { peerURLs?: string[]; isLearner?: boolean };
    const attrs = JSON.parse(node.Children?.['attributes']?.Value ?? '{}') as { name?: string; clientURLs?: string[] };
    members.push({ id: BigInt('0x' + hex), name: attrs.name ?? '', peerUrls: raft.peerURLs ?? [], clientUrls: attrs.clientURLs ?? [], isLearner: raft.isLearner === true });
  }
  const removed = Object.keys(dir?.['removed_members']?.Children ?? {}).map((hex) => BigInt('0x' + hex));
  return { index: Number((meta.get(2) as bigint | undefined) ?? 0n), term: Number((meta.get(3) as bigint | undefined) ?? 0n), members, removed, file };
}

/**
 * The newest snapshot whose index the WAL names (etcd's loadMatching with the WAL's
 * snapshot records), or null when etcd never took one.
 */
export function readNewestEtcdSnap(snapDir: string, walSnapshots: { index: number; term: number }[]): EtcdSnap | null {
  const names = fs.readdirSync(snapDir).filter((n) => SNAP_NAME_RE.test(n)).sort().reverse();
  for (const name of names) {
    const s = readEtcdSnap(path.join(snapDir, name));
    if (walSnapshots.some((w) => w.index === s.index && w.term === s.term)) return s;
  }
  return null;
}
