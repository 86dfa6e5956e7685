import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { crc32c as jsCrc32c } from '../../src/common/crc32c.js';
import { bindings, loadNativeBindings, zeroFill, type NativeBindings } from '../../src/native/index.js';
import { makeRng } from '../../src/raft/rng.js';

const NO_NATIVE = process.env['ETSD_NO_NATIVE'] === '1';
const MODULE_URL = new URL('../../src/native/index.js', import.meta.url).href;

const warnings: string[] = [];
const js: NativeBindings = loadNativeBindings({ disable: true, warn: (l) => warnings.push(l) });
const variants: [string, NativeBindings][] = [
  ['default', bindings],
  ['js', js],
];

const rng = makeRng;

function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

function tmpFile(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etsd-native-'));
  return { dir, file: path.join(dir, 'f') };
}

test('the addon loads on this machine (unless ETSD_NO_NATIVE=1)', () => {
  if (NO_NATIVE) {
    assert.equal(bindings.native, false);
    assert.match(bindings.fallbackReason ?? '', /ETSD_NO_NATIVE/);
  } else {
    assert.equal(bindings.native, true, `fallback reason: ${bindings.fallbackReason}`);
    assert.equal(bindings.fallbackReason, null);
  }
  assert.equal(js.native, false);
  assert.equal(warnings.length, 1);
  const w = JSON.parse(warnings[0]!) as { level: string; reason: string };
  assert.equal(w.level, 'warn');
  assert.match(w.reason, /ETSD_NO_NATIVE=1/);
});

test('a missing or broken addon falls back with the reason', () => {
  const lines: string[] = [];
  const b = loadNativeBindings({ addonPath: '/nonexistent/etsd_native.node', warn: (l) => lines.push(l) });
  assert.equal(b.native, false);
  assert.match(b.fallbackReason ?? '', /not found/);
  assert.equal(lines.length, 1);
  const { dir, file } = tmpFile();
  try {
    fs.writeFileSync(file + '.node', 'not an ELF file');
    const c = loadNativeBindings({ addonPath: file + '.node', warn: (l) => lines.push(l) });
    assert.equal(c.native, false);
    assert.equal(lines.length, 2);
    assert.equal(c.crc32c(Buffer.from('123456789')), 0xe3069283);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('crc32c known vectors (RFC 3720 B.4)', () => {
  for (const [, b] of variants) {
    assert.equal(b.crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(b.crc32c(Buffer.alloc(32, 0)), 0x8a9136aa);
    assert.equal(b.crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    assert.equal(b.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(b.crc32c(new Uint8Array(0)), 0);
    assert.equal(b.crc32c(new Uint8Array(0), 0x12345678), 0x12345678);
  }
});

test('crc32c: addon equals JS for many lengths, alignments and seeds', () => {
  const next = rng(0xc0ffee);
  const backing = randomBytes(next, (1 << 20) + 64);
  const lengths: number[] = [];
  for (let n = 0; n <= 300; n++) lengths.push(n);
  lengths.push(511, 512, 513, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20);
  const seeds = [0, 1, 0xffffffff, 0x80000000, 0xe3069283, -1, -5, 2 ** 32 + 7];
  for (let i = 0; i < 20; i++) seeds.push(next());
  let checked = 0;
  for (const n of lengths) {
    for (let off = 0; off < 8 && off + n <= backing.length; off++) {
      const view = backing.subarray(off + 17 * (n & 3), off + 17 * (n & 3) + n);
      assert.equal(view.length, n);
      const seedSet = n <= 300 ? seeds : seeds.slice(0, 3);
      for (const seed of seedSet) {
        const want = jsCrc32c(view, seed);
        assert.equal(bindings.crc32c(view, seed), want, `n=${n} off=${off} seed=${seed}`);
        assert.equal(js.crc32c(view, seed), want);
        checked++;
      }
      // A plain Uint8Array over a shared ArrayBuffer with an odd byteOffset.
      const u8 = new Uint8Array(backing.buffer, backing.byteOffset + off + 1, n);
      assert.equal(bindings.crc32c(u8), jsCrc32c(u8));
    }
  }
  assert.ok(checked > 10_000);
});

test('crc32c: seed chaining equals one pass over the concatenation', () => {
  const data = randomBytes(rng(7), 1000);
  const whole = bindings.crc32c(data);
  for (let cut = 0; cut <= data.length; cut += 13) {
    assert.equal(bindings.crc32c(data.subarray(cut), bindings.crc32c(data.subarray(0, cut))), whole);
  }
});

test('crc32c: the addon rejects non-Uint8Array data and non-number seeds', { skip: !bindings.native }, () => {
  const bad: unknown[] = ['abc', 42, null, undefined, new Uint16Array(4), [1, 2, 3], new ArrayBuffer(4)];
  for (const v of bad) assert.throws(() => bindings.crc32c(v as Uint8Array), TypeError);
  assert.throws(() => bindings.crc32c(Buffer.alloc(1), '1' as unknown as number), TypeError);
  assert.equal(bindings.crc32c(Buffer.from('123456789'), undefined), 0xe3069283);
});

for (const [name, b] of variants) {
  test(`fallocate (${name}): grows the file, reads zeros, keeps existing data`, () => {
    const { dir, file } = tmpFile();
    const fd = fs.openSync(file, 'w+');
    try {
      b.fallocate(fd, 0, 1 << 20);
      let st = fs.fstatSync(fd);
      assert.equal(st.size, 1 << 20);
      if (b.native) assert.ok(st.blocks * 512 >= 1 << 20, `allocated ${st.blocks * 512} bytes`);
      fs.writeSync(fd, Buffer.from('hello'), 0, 5, 100);
      b.fallocate(fd, 0, 2 << 20); // overlaps existing data: must not clobber it
      b.fallocate(fd, (2 << 20) + 4096, 8192); // leaves a gap, which reads as zeros
      b.fallocate(fd, 10, 0); // zero length: no-op
      st = fs.fstatSync(fd);
      assert.equal(st.size, (2 << 20) + 4096 + 8192);
      const all = fs.readFileSync(file);
      assert.equal(all.length, st.size);
      assert.equal(all.subarray(100, 105).toString(), 'hello');
      all.fill(0, 100, 105);
      assert.ok(all.every((x) => x === 0));
      assert.throws(() => b.fallocate(fd, -1, 10), RangeError);
      assert.throws(() => b.fallocate(fd, 0, 1.5), RangeError);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`fdatasync (${name}): works on a temp file, throws EBADF on a closed fd`, () => {
    const { dir, file } = tmpFile();
    const fd = fs.openSync(file, 'w+');
    fs.writeSync(fd, Buffer.alloc(4096, 1));
    b.fdatasync(fd);
    fs.closeSync(fd);
    try {
      assert.throws(
        () => b.fdatasync(fd),
        (err: NodeJS.ErrnoException) => err.code === 'EBADF' && err.syscall === 'fdatasync' && err.errno === -9,
      );
      assert.throws(() => b.fallocate(fd, 0, 4096), (err: NodeJS.ErrnoException) => err.code === 'EBADF');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('fallocate: a read-only fd gives an errno Error the caller can fall back on', { skip: !bindings.native }, () => {
  const { dir, file } = tmpFile();
  fs.writeFileSync(file, 'x');
  const fd = fs.openSync(file, 'r');
  try {
    assert.throws(
      () => bindings.fallocate(fd, 0, 4096),
      (err: NodeJS.ErrnoException) =>
        err instanceof Error && err.code === 'EBADF' && err.syscall === 'fallocate' && /EBADF/.test(err.message),
    );
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('zeroFill is exported for callers whose filesystem refuses fallocate', () => {
  const { dir, file } = tmpFile();
  const fd = fs.openSync(file, 'w+');
  try {
    zeroFill(fd, 0, 3 * 1024 * 1024 + 5);
    assert.equal(fs.fstatSync(fd).size, 3 * 1024 * 1024 + 5);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('pinThreadToCpu returns a boolean; loads and pins inside a worker thread', async () => {
  assert.equal(js.pinThreadToCpu(0), false);
  assert.equal(bindings.pinThreadToCpu(-1), false);
  assert.equal(bindings.pinThreadToCpu(1 << 20), false);
  assert.equal(bindings.pinThreadToCpu(Number.NaN), false);
  // Pin a worker, not the test's main thread.
  const src = `
    import { parentPort } from 'node:worker_threads';
    const m = await import(${JSON.stringify(MODULE_URL)});
    parentPort.postMessage({ native: m.native, pinned: m.pinThreadToCpu(0), crc: m.crc32c(Buffer.from('123456789')) });
  `;
  const w = new Worker(new URL('data:text/javascript,' + encodeURIComponent(src)));
  const msg = await new Promise<{ native: boolean; pinned: unknown; crc: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(typeof msg.pinned, 'boolean');
  assert.equal(msg.native, bindings.native);
  if (bindings.native) assert.equal(msg.pinned, true);
  assert.equal(msg.crc, 0xe3069283);
});

test('ETSD_NO_NATIVE=1 in a child process: fallback, one warning, identical crcs', () => {
  const script = `
    const m = await import(${JSON.stringify(MODULE_URL)});
    let s = 12345;
    const out = [];
    for (let i = 0; i < 200; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const b = Buffer.alloc(i * 7 + (s & 15));
      for (let j = 0; j < b.length; j++) b[j] = (s >>> (j & 15)) ^ j;
      out.push(m.crc32c(b.subarray(i & 7), s));
    }
    process.stdout.write(JSON.stringify({ native: m.native, out }));
  `;
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as { native: boolean; out: number[] }), stderr: r.stderr };
  };
  const off = run({ ETSD_NO_NATIVE: '1' });
  const on = run({ ETSD_NO_NATIVE: '' });
  assert.equal(off.native, false);
  const lines = off.stderr.trim().split('\n').filter((l) => l.includes('native addon'));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /ETSD_NO_NATIVE=1/);
  const addonAvailable = loadNativeBindings({ warn: () => {} }).native;
  assert.equal(on.native, addonAvailable);
  if (!NO_NATIVE) assert.equal(addonAvailable, true);
  if (on.native) assert.equal(on.stderr.includes('native addon'), false);
  assert.deepEqual(on.out, off.out);
  assert.equal(on.out.length, 200);
});
