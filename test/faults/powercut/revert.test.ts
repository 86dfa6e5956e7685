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

/** Runs `script` (CommonJS, `dir` bound) with the shim, waits for "ready" on stdout, kills it -9. */
async function runAndCut(dir: string, journal: string, script: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `const fs = require('fs'); const dir = ${JSON.stringify(dir)};\n${script}\nconsole.log('ready'); setInterval(() => {}, 1000);`], {
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
