// The power-cut model on real files: a child process with the shim preloaded
// writes, syncs, renames and truncates under a directory, is killed -9, and
// the revert must leave exactly what its syncs made durable (revert.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildShim } from './build.js';
import { revertUnsynced } from './revert.js';

/** Runs `script` (CommonJS; `dir` and `ready()` bound) with the shim until it calls ready(), then kills it -9. */
async function runAndCut(dir: string, journal: string, script: string): Promise<void> {
  const prelude = `const fs = require('fs'); const dir = ${JSON.stringify(dir)}; const ready = () => console.log('ready'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', `${prelude}\n${script}`], {
    env: { ...process.env, LD_PRELOAD: buildShim(), POWERCUT_DIR: dir, POWERCUT_JOURNAL: journal, UV_USE_IO_URING: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    void closed.then((code) => reject(new Error(`the child exited (${code}) before it was ready`)));
  });
  child.kill('SIGKILL');
  await closed;
}

test('power-cut revert: only what a completed fsync/fdatasync covered survives', async () => {
  const base = mkdtempSync(join(tmpdir(), 'etsd-powercut-test-'));
  const dir = join(base, 'data');
  mkdirSync(dir);
  const journal = join(base, 'journal');
  try {
    await runAndCut(dir, journal, `
      const p = (n) => dir + '/' + n;
      // appended: synced part kept, the rest cut off
      let fd = fs.openSync(p('append'), 'w'); fs.writeSync(fd, 'durable|'); fs.fdatasyncSync(fd); fs.writeSync(fd, 'lost'); fs.closeSync(fd);
      // preallocated zeros, synced, then overwritten without a sync (the WAL's case)
      fd = fs.openSync(p('prealloc'), 'w+'); fs.writeSync(fd, Buffer.alloc(16), 0, 16, 0); fs.fsyncSync(fd);
      fs.writeSync(fd, 'abcd', 4); fs.closeSync(fd);
      // created and never synced: left empty
      fs.writeFileSync(p('never'), 'gone');
      // written under a temp name, synced, renamed: kept under the new name
      fd = fs.openSync(p('tmp'), 'w'); fs.writeSync(fd, 'renamed'); fs.fsyncSync(fd); fs.closeSync(fd); fs.renameSync(p('tmp'), p('final'));
      // synced, then truncated without a sync: the bytes come back
      fd = fs.openSync(p('trunc'), 'w'); fs.writeSync(fd, '0123456789'); fs.fsyncSync(fd); fs.ftruncateSync(fd, 3); fs.closeSync(fd);
      // synced, then rewritten with O_TRUNC: the old contents come back
      fs.writeFileSync(p('rewrite'), 'old'); fd = fs.openSync(p('rewrite'), 'r+'); fs.fsyncSync(fd); fs.closeSync(fd);
      fs.writeFileSync(p('rewrite'), 'new contents');
      // two syncs: the second one's data survives too
      fd = fs.openSync(p('two'), 'w'); fs.writeSync(fd, 'a'); fs.fsyncSync(fd); fs.writeSync(fd, 'b'); fs.fdatasyncSync(fd); fs.writeSync(fd, 'c'); fs.closeSync(fd);
      // a file outside the directory is never touched
      fs.writeFileSync(${JSON.stringify(join(base, 'outside'))}, 'kept');
      ready();
    `);
    // Before the revert every byte is there (a kill -9 keeps the page cache).
    assert.equal(readFileSync(join(dir, 'append'), 'utf8'), 'durable|lost');
    const r = revertUnsynced(dir, [journal]);
    const read = (n: string): string => readFileSync(join(dir, n), 'utf8');
    assert.equal(read('append'), 'durable|');
    assert.deepEqual(readFileSync(join(dir, 'prealloc')), Buffer.alloc(16));
    assert.equal(statSync(join(dir, 'never')).size, 0);
    assert.equal(read('final'), 'renamed');
    assert.ok(!existsSync(join(dir, 'tmp')));
    assert.equal(read('trunc'), '0123456789');
    assert.equal(read('rewrite'), 'old');
    assert.equal(read('two'), 'ab');
    assert.equal(readFileSync(join(base, 'outside'), 'utf8'), 'kept');
    assert.equal(r.syncs, 7, `completed syncs seen: ${r.syncs}`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

// Four threads (libuv's pool, as RocksDB's and the WAL worker's own threads) write at once: the
// journal must hold every record whole and the revert keep exactly each file's synced prefix.
test('power-cut revert: concurrent writers from several threads', async () => {
  const base = mkdtempSync(join(tmpdir(), 'etsd-powercut-test-'));
  const dir = join(base, 'data');
  mkdirSync(dir);
  const journal = join(base, 'journal');
  try {
    await runAndCut(dir, journal, `
      const rec = (f, i) => Buffer.from(String(f) + ':' + String(i).padStart(6, '0') + ';'.repeat(92));
      const one = async (f) => {
        const h = await fs.promises.open(dir + '/f' + f, 'w');
        for (let i = 0; i < 200; i++) {
          await h.write(rec(f, i));
          if (i === 99) await h.datasync();
        }
      };
      Promise.all([0, 1, 2, 3].map(one)).then(ready);
    `);
    for (let f = 0; f < 4; f++) assert.equal(statSync(join(dir, `f${f}`)).size, 200 * 100, 'every record written before the cut');
    revertUnsynced(dir, [journal]);
    for (let f = 0; f < 4; f++) {
      const text = readFileSync(join(dir, `f${f}`), 'utf8');
      assert.equal(text.length, 100 * 100, `f${f} keeps its 100 synced records`);
      assert.ok(text.endsWith(`${f}:000099${';'.repeat(92)}`));
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
