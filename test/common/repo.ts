// Where the repository and the built etsd are, for tests that start it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the repository root (package.json) above ' + fileURLToPath(import.meta.url));
}

/** The built etsd CLI; throws a clear error (with `hint`) if it is not built. */
export function etsdScript(hint = 'run "npm run build"'): string {
  const script = join(repoRoot(), 'dist', 'src', 'cli', 'etsd.js');
  if (!existsSync(script)) throw new Error(`etsd is not built: ${script} does not exist (${hint})`);
  return script;
}
