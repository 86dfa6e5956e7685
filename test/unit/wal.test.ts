import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32c } from '../../src/common/crc32c.js';
import { encodeRecord, encodedSize, scanRecords, RecordType, type WalRecord } from '../../src/storage/wal/record.js';
import { Wal, WalCorruptError, WalRecordTooLargeError, segmentName } from '../../src/storage/wal/wal.js';

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-wal-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function entry(index: number, term = 1, len = 20): WalRecord {
  const data = new Uint8Array(len);
  for (let i = 0; i < len; i++) data[i] = (index * 13 + i) & 255;
  return { type: RecordType.Entry, index, term, data };
}

function norm(recs: WalRecord[]): Array<[number, number, number, string]> {
  return recs.map((r) => [r.type, r.index, r.term, Buffer.from(r.data).toString('hex')]);
}

function encodeAll(recs: WalRecord[]): Buffer {
  let size = 0;
  for (const r of recs) size += encodedSize(r);
  const buf = Buffer.alloc(size);
  let at = 0;
  for (const r of recs) at = encodeRecord(r, buf, at);
  assert.equal(at, size);
  return buf;
}

// ------------------------------------------------------------------ crc32c

test('crc32c known vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) B.4 test vectors.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const inc = new Uint8Array(32);
  for (let i = 0; i < 32; i++) inc[i] = i;
  assert.equal(crc32c(inc), 0x46dd794e);
  const dec = new Uint8Array(32);
  for (let i = 0; i < 32; i++) dec[i] = 31 - i;
  assert.equal(crc32c(dec), 0x113fdb5c);
});

test('crc32c: seed chaining and all tail lengths agree with a bytewise reference', () => {
  const ref = (d: Uint8Array): number => {
    let c = ~0;
    for (const b of d) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return ~c >>> 0;
  };
  const data = new Uint8Array(300);
  for (let i = 0; i < data.length; i++) data[i] = (i * 97 + 11) & 255;
  for (let n = 0; n <= 40; n++) assert.equal(crc32c(data.subarray(0, n)), ref(data.subarray(0, n)), `len ${n}`);
  for (let cut = 0; cut <= 300; cut += 7) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data));
  }
});

// ------------------------------------------------------------------ record

test('record encode/scan round trip', () => {
  const recs: WalRecord[] = [
    entry(1, 1, 0),
    entry(2, 1, 300),
    { type: RecordType.HardState, index: 2, term: 7, data: Uint8Array.of(1, 2, 3) },
    { type: RecordType.Meta, index: 0, term: 0, data: Buffer.from('meta') },
    entry(2 ** 53 - 1, 2 ** 40 + 5, 9),
  ];
  const buf = encodeAll(recs);
  assert.equal(encodedSize(recs[0]!), 32); // 8 header + 17 body, padded
  assert.equal(buf.length % 8, 0);
  const scan = scanRecords(buf, 0, buf.length);
  assert.equal(scan.stop, 'eof');
  assert.equal(scan.end, buf.length);
  assert.deepEqual(norm(scan.records), norm(recs));
  // Followed by zeros: stops at 'zero' at the same offset.
  const padded = Buffer.concat([buf, Buffer.alloc(64)]);
  const z = scanRecords(padded, 0, padded.length);
  assert.equal(z.stop, 'zero');
  assert.equal(z.end, buf.length);
  assert.throws(() => encodeRecord(entry(-1), Buffer.alloc(64), 0), RangeError);
  assert.throws(() => encodeRecord({ ...entry(1), type: 0 }, Buffer.alloc(64), 0), RangeError);
  assert.throws(() => encodeRecord(entry(1, 1, 100), Buffer.alloc(64), 0), RangeError);
});

test('scan of a buffer cut at every offset keeps the whole records before the cut', () => {
  const recs = [entry(1, 1, 5), entry(2, 1, 40), entry(3, 2, 17)];
  const full = encodeAll(recs);
  const ends: number[] = [];
  let at = 0;
  for (const r of recs) {
    ends.push(at + 8 + 17 + r.data.length); // end of the body (padding excluded)
    at += encodedSize(r);
  }
  for (let cut = 0; cut <= full.length; cut++) {
    // Cut by `end` and also by copying into a zero-filled buffer (a torn write
    // into a preallocated file).
    for (const [buf, end] of [
      [full, cut],
      [Buffer.concat([full.subarray(0, cut), Buffer.alloc(full.length - cut + 64)]), full.length + 64],
    ] as const) {
      const scan = scanRecords(buf, 0, end);
      const want = ends.filter((e) => e <= cut).length;
      assert.equal(scan.records.length, want, `cut ${cut}`);
      assert.deepEqual(norm(scan.records), norm(recs.slice(0, want)), `cut ${cut}`);
      if (want === recs.length) continue;
      // A cut at a record's end or inside its padding leaves whole records only.
      const boundary = cut === 0 || ends.some((e) => cut >= e && cut <= ((e + 7) & ~7));
      if (boundary && end === cut) assert.equal(scan.stop, 'eof', `cut ${cut}`);
      else assert.ok(scan.stop === 'torn' || scan.stop === 'zero' || scan.stop === 'crc', `cut ${cut}: ${scan.stop}`);
      if (end === cut) assert.ok(scan.stop !== 'crc', `cut ${cut}: a plain cut is never a crc error`);
    }
  }
});

test('a flipped byte anywhere in a record body or header stops the scan', () => {
  const recs = [entry(1), entry(2), entry(3)];
  const full = encodeAll(recs);
  const size = encodedSize(recs[0]!);
  for (let i = size; i < size + 8 + 17 + 20; i++) {
    const buf = Buffer.from(full);
    buf[i]! ^= 0x40;
    const scan = scanRecords(buf, 0, buf.length);
    assert.equal(scan.records.length, 1, `flip at ${i}`);
    assert.equal(scan.end, size);
    if (i >= size + 4) assert.equal(scan.stop, 'crc', `flip at ${i}`);
    else assert.ok(scan.stop === 'crc' || scan.stop === 'torn', `flip in length at ${i}: ${scan.stop}`);
  }
});

// --------------------------------------------------------------------- Wal

const SEG = 64 * 1024;

test('Wal open/append/sync/close/reopen returns the same records', (t) => {
  const dir = tmpDir(t);
  const first = Wal.open(dir, { segmentBytes: SEG });
  assert.deepEqual(first.records, []);
  assert.equal(first.repair, null);
  assert.equal(first.wal.lastIndex, 0);
  const recs: WalRecord[] = [{ type: RecordType.Meta, index: 0, term: 0, data: Buffer.from('cluster-1') }];
  for (let i = 1; i <= 50; i++) recs.push(entry(i, 1 + (i >> 4), i * 3));
  recs.push({ type: RecordType.HardState, index: 50, term: 4, data: Uint8Array.of(9) });
  first.wal.append(recs.slice(0, 10));
  first.wal.sync();
  first.wal.append(recs.slice(10));
  first.wal.sync();
  assert.equal(first.wal.lastIndex, 50);
  first.wal.close();
  assert.equal(fs.statSync(path.join(dir, segmentName(0, 0))).size, SEG);

  const again = Wal.open(dir, { segmentBytes: SEG });
  assert.equal(again.repair, null);
  assert.deepEqual(norm(again.records), norm(recs));
  assert.equal(again.wal.lastIndex, 50);
  // Overwritten indexes are returned as written, in file order.
  again.wal.append([entry(49, 5), entry(50, 5)]);
  again.wal.close();
  const third = Wal.open(dir, { segmentBytes: SEG });
  assert.deepEqual(norm(third.records), norm([...recs, entry(49, 5), entry(50, 5)]));
  assert.equal(third.wal.lastIndex, 50);
  third.wal.close();
});

test('Wal rolls across several segments, preallocating the next one ahead', (t) => {
  const dir = tmpDir(t);
  const { wal } = Wal.open(dir, { segmentBytes: SEG });
  // 328 bytes a record, 199 per 64 KiB segment: 1100 records fill 5 segments
  // and put the 6th past half, so the 7th is being preallocated.
  const N = 1100;
  const recs: WalRecord[] = [];
  for (let i = 1; i <= N; i++) recs.push(entry(i, 1, 300));
  for (let i = 0; i < recs.length; i += 37) {
    wal.append(recs.slice(i, i + 37));
    wal.sync();
  }
  const names = wal.segmentNames();
  assert.equal(names.length, 6);
  assert.equal(names[0], segmentName(0, 0));
  // Each rolled segment is named by its first record's index.
  const reopened = (): WalRecord[] => {
    const r = Wal.open(dir, { segmentBytes: SEG });
    r.wal.close();
    return r.records;
  };
  wal.close();
  const files = fs.readdirSync(dir).sort();
  assert.ok(files.includes('next.wal.tmp'), 'next segment preallocated ahead');
  for (const f of files) assert.equal(fs.statSync(path.join(dir, f)).size, SEG, f);
  const back = reopened();
  assert.deepEqual(norm(back), norm(recs));
  for (const name of names.slice(1)) {
    const first = parseInt(name.slice(17, 33), 16);
    assert.ok(first > 1 && first <= N);
  }

  // releaseBefore deletes whole old segments only, never the current one.
  const { wal: w2, records } = Wal.open(dir, { segmentBytes: SEG });
  assert.equal(records.length, N);
  const second = parseInt(names[1]!.slice(17, 33), 16);
  w2.releaseBefore(second); // segment 0 holds 1..second-1
  assert.deepEqual(w2.segmentNames(), names.slice(1));
  w2.releaseBefore(second); // nothing more qualifies
  assert.deepEqual(w2.segmentNames(), names.slice(1));
  w2.releaseBefore(Number.MAX_SAFE_INTEGER);
  assert.deepEqual(w2.segmentNames(), names.slice(-1));
  w2.close();
  const tail = Wal.open(dir, { segmentBytes: SEG });
  assert.ok(tail.records.length > 0 && tail.records.length < N);
  assert.equal(tail.records.at(-1)!.index, N);
  tail.wal.close();
});

test('a record larger than a segment is rejected before anything is written', (t) => {
  const dir = tmpDir(t);
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  assert.throws(() => wal.append([entry(1), entry(2, 1, 5000)]), WalRecordTooLargeError);
  assert.throws(() => wal.append([entry(1), entry(-2)]), RangeError);
  wal.append([entry(1)]);
  wal.close();
  const back = Wal.open(dir, { segmentBytes: 4096 });
  assert.deepEqual(norm(back.records), norm([entry(1)]));
  back.wal.close();
});

for (const damage of ['truncate', 'corrupt', 'garbage-after-zero'] as const) {
  test(`torn tail on reopen (${damage}) is repaired, reported, and nothing stale comes back`, (t) => {
    const dir = tmpDir(t);
    const { wal } = Wal.open(dir, { segmentBytes: SEG });
    const recs: WalRecord[] = [];
    for (let i = 1; i <= 20; i++) recs.push(entry(i, 1, 100));
    wal.append(recs);
    wal.sync();
    wal.close();
    const file = path.join(dir, segmentName(0, 0));
    const recSize = encodedSize(recs[0]!);
    const lastAt = recSize * 19;
    const fd = fs.openSync(file, 'r+');
    if (damage === 'truncate') {
      fs.ftruncateSync(fd, lastAt + 50); // cut the last record
    } else if (damage === 'corrupt') {
      fs.writeSync(fd, Buffer.of(0xff), 0, 1, lastAt + 40); // flip payload byte of record 20
    } else {
      // Header of record 20 never reached disk but later bytes did.
      fs.writeSync(fd, Buffer.alloc(8), 0, 8, lastAt);
    }
    fs.closeSync(fd);

    const r1 = Wal.open(dir, { segmentBytes: SEG });
    assert.deepEqual(norm(r1.records), norm(recs.slice(0, 19)));
    assert.ok(r1.repair !== null, 'repair reported');
    assert.equal(r1.repair.segment, segmentName(0, 0));
    assert.equal(r1.repair.offset, lastAt);
    assert.match(r1.repair.reason, damage === 'truncate' ? /torn/ : damage === 'corrupt' ? /crc/ : /non-zero/);
    assert.equal(r1.wal.lastIndex, 19);
    assert.equal(fs.statSync(file).size, SEG, 'short segment extended back to full size');
    // A smaller record now lands where record 20 was; stale bytes of the old
    // record 20 after it must not come back.
    const fresh = [entry(20, 2, 10), entry(21, 2, 10)];
    r1.wal.append(fresh);
    r1.wal.sync();
    r1.wal.close();
    const r2 = Wal.open(dir, { segmentBytes: SEG });
    assert.equal(r2.repair, null);
    assert.deepEqual(norm(r2.records), norm([...recs.slice(0, 19), ...fresh]));
    const raw = fs.readFileSync(file);
    const end = lastAt + encodedSize(fresh[0]!) + encodedSize(fresh[1]!);
    assert.ok(raw.subarray(end).every((b) => b === 0), 'everything after the log is zero');
    r2.wal.close();
  });
}

test('corruption in a segment that is not the last throws WalCorruptError', (t) => {
  const dir = tmpDir(t);
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  for (let i = 1; i <= 40; i++) wal.append([entry(i, 1, 200)]);
  wal.close();
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  assert.ok(names.length >= 3);
  const victim = path.join(dir, names[1]!);
  const fd = fs.openSync(victim, 'r+');
  fs.writeSync(fd, Buffer.of(0x5a), 0, 1, 300);
  fs.closeSync(fd);
  assert.throws(
    () => Wal.open(dir, { segmentBytes: 4096 }),
    (e: unknown) => {
      assert.ok(e instanceof WalCorruptError);
      assert.equal(e.code, 'ETSD_WAL_CORRUPT');
      assert.equal(e.file, names[1]);
      assert.equal(e.offset, encodedSize(entry(1, 1, 200)));
      assert.match(e.message, new RegExp(names[1]!.replace('.', '\\.')));
      return true;
    },
  );
  // A missing middle segment is corruption too.
  fs.unlinkSync(victim);
  assert.throws(() => Wal.open(dir, { segmentBytes: 4096 }), WalCorruptError);
});

test('a partially preallocated tmp segment is resumed on open', (t) => {
  const dir = tmpDir(t);
  fs.writeFileSync(path.join(dir, 'next.wal.tmp'), Buffer.alloc(1000));
  const { wal } = Wal.open(dir, { segmentBytes: 4096 });
  for (let i = 1; i <= 30; i++) wal.append([entry(i, 1, 200)]);
  wal.sync();
  assert.ok(wal.segmentNames().length >= 2);
  wal.close();
  const back = Wal.open(dir, { segmentBytes: 4096 });
  assert.equal(back.records.length, 30);
  back.wal.close();
});
