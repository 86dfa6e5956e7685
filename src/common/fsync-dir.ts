import { closeSync, fsyncSync, openSync } from 'node:fs';

/** A rename, create or unlink in `dir` is durable once the directory itself is synced. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
