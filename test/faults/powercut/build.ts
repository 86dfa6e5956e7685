// Builds the power-cut shim (shim.c beside this file's source) with gcc at
// run time, so no binary is committed and a fresh CI machine builds its own.
// The .so goes to a temp dir named by a hash of the source: built once per
// source version and machine, shared by every cluster of a test process.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../common/repo.js';

/** gcc failed or is missing: power-cut runs cannot be had on this machine. */
export class ShimBuildError extends Error { override name = 'ShimBuildError'; }

export function shimSource(): string { return join(repoRoot(), 'test', 'faults', 'powercut', 'shim.c'); }

/** The path of the built shim, building it first if this source was not built here yet. */
export function buildShim(): string {
  const src = readFileSync(shimSource());
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `etsd-powercut-shim-${hash}`);
  const so = join(dir, 'shim.so');
  if (existsSync(so)) return so;
  mkdirSync(dir, { recursive: true });
  // Built under a name of its own, then renamed: a concurrent builder never loads half a file.
  const tmp = join(dir, `shim.${process.pid}.so`);
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-shared', '-fPIC', '-o', tmp, shimSource(), '-ldl', '-lpthread'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new ShimBuildError(`gcc could not build ${shimSource()}: ${err.stderr?.toString().trim() || err.message}`);
  }
  renameSync(tmp, so);
  return so;
}
