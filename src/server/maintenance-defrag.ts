// Maintenance.Defragment (member/defragmenter.ts does the work). Admin-only
// while auth is on, refused with etcd's untranslated auth texts
// (authMaintenanceServer); answers, like etcd 3.4's
// maintenanceServer, an empty DefragmentResponse (no header) once this
// member's storage is compacted. Without the native addon's RocksDB access
// it answers UNIMPLEMENTED and says why.

import type { UnaryHandler } from '../grpc/rpc.js';
import type { Member } from '../member/member.js';
import { asMaintenanceAdmin } from './auth-check.js';

const EMPTY = Buffer.alloc(0);

export function defragHandlers(member: Member): Map<string, UnaryHandler> {
  return new Map<string, UnaryHandler>([
    ['/etcdserverpb.Maintenance/Defragment', async (_req, ctx) => {
      await asMaintenanceAdmin(member, ctx, () => member.defragment());
      return EMPTY;
    }],
  ]);
}
