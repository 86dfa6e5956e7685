#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Usage: node scripts/test.mjs [subdir ...]   e.g. node scripts/test.mjs unit compat
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../dist/test/', import.meta.url).pathname;
const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'sim', 'integration', 'compat', 'faults'];

function collect(dir) {
  let out = [];
  let names;
  try { names = readdirSync(dir).sort(); } catch { return out; }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out = out.concat(collect(p));
    else if (n.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => collect(join(root, d)));
if (files.length === 0) {
  console.error('no compiled tests found under dist/test: run `npm run build` first');
  process.exit(1);
}
// One test file at a time: the machine has 2 cores and several tests start servers.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
