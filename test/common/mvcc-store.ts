// A real MVCC store (RocksDB in a temp dir, writer and applier) for unit tests,
// removed when the test ends.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RocksLevel } from '@nxtedition/rocksdb';
import { Applier } from '../../src/storage/mvcc/applier.js';
import { MvccWriter } from '../../src/storage/mvcc/writer.js';

export interface TestStore { db: RocksLevel; w: MvccWriter; a: Applier }

/** `leaseExists` answers the applier's "is this lease granted" question. */
export async function openTestStore(t: { after(fn: () => Promise<void>): void }, label: string, leaseExists: (id: bigint) => boolean): Promise<TestStore> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etsd-${label}-test-`));
  const db = new RocksLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: true });
  t.after(async () => {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const w = new MvccWriter(db);
  return { db, w, a: new Applier(w, leaseExists) };
}
