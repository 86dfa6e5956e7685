// Native helpers for the WAL worker, with pure-JS fallbacks.
//
// Loads native-bindings/build/Release/etsd_native.node (an N-API addon built
// from source by `npm run build:native`, part of `prepare`). When it is
// missing, fails to load, or ETSD_NO_NATIVE=1 is set, every function falls back
// to JS and one JSON line on stderr says why (once per thread that loads this).
//
// All calls are synchronous on the calling thread, like the fs.*Sync calls
// they replace: meant for the WAL worker, not the main thread.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { crc32c as jsCrc32c } from '../common/crc32c.js';

export interface NativeBindings {
  /** CRC-32C (Castagnoli) of `data`, continuing from `seed` (a previous result). Unsigned. */
  crc32c(data: Uint8Array, seed?: number): number;
  /**
   * Make [offset, offset+length) allocated and zero-reading, growing the file
   * if needed; existing data is left as it is. No sync. Native: fallocate(2)
   * mode 0; throws an Error with `code` (e.g. EOPNOTSUPP) on failure so the
   * caller can fall back to `zeroFill`.
   */
  fallocate(fd: number, offset: number, length: number): void;
  /** fdatasync(2); throws on error (never retried except EINTR). */
  fdatasync(fd: number): void;
  /** Pin the calling thread to one CPU. False when not possible (or no addon). */
  pinThreadToCpu(cpu: number): boolean;
  /** True when the addon is in use. */
  readonly native: boolean;
  /** Why the fallbacks are in use; null when native. */
  readonly fallbackReason: string | null;
  /** True when crc32c runs on the CPU's crc32 instruction (SSE4.2). */
  readonly hardwareCrc: boolean;
  /** The addon file in use (native/rocksdb.ts loads its RocksDB part from it); null when not native. */
  readonly addonFile: string | null;
}

interface Addon {
  crc32c(data: Uint8Array, seed?: number): number;
  fallocate(fd: number, offset: number, length: number): void;
  fdatasync(fd: number): void;
  pinThreadToCpu(cpu: number): boolean;
  hasHardwareCrc(): boolean;
}

const ADDON_REL = path.join('native-bindings', 'build', 'Release', 'etsd_native.node');
const ZERO_CHUNK_BYTES = 1024 * 1024;
let zeros: Buffer | undefined;

/**
 * JS fallback for fallocate: write zeros over [max(offset, size), offset+length).
 * Bytes below the current size are left alone (they already read as data or
 * as zeros from holes), so, like fallocate, it never clobbers data. No sync.
 */
export function zeroFill(fd: number, offset: number, length: number): void {
  checkRange(offset, length);
  const end = offset + length;
  let at = Math.max(offset, fs.fstatSync(fd).size);
  if (at >= end) return;
  zeros ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  while (at < end) at += fs.writeSync(fd, zeros, 0, Math.min(zeros.length, end - at), at);
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, got ${length}`);
}

/** The repo root: the nearest folder at or above this module holding package.json. */
export function packageRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return null;
  }
}

function jsBindings(reason: string): NativeBindings {
  return {
    crc32c: jsCrc32c,
    fallocate: zeroFill,
    fdatasync: (fd) => fs.fdatasyncSync(fd),
    pinThreadToCpu: () => false,
    native: false,
    fallbackReason: reason,
    hardwareCrc: false,
    addonFile: null,
  };
}

function nativeBindings(addon: Addon, file: string): NativeBindings {
  return {
    crc32c: addon.crc32c,
    fallocate: addon.fallocate,
    fdatasync: addon.fdatasync,
    pinThreadToCpu: addon.pinThreadToCpu,
    native: true,
    fallbackReason: null,
    hardwareCrc: addon.hasHardwareCrc(),
    addonFile: file,
  };
}

export interface LoadOptions {
  /** Force the JS fallbacks (what ETSD_NO_NATIVE=1 does). */
  disable?: boolean;
  /** Addon file to load instead of <package root>/native-bindings/build/Release/etsd_native.node. */
  addonPath?: string;
  /** Where the one-line fallback warning goes; default stderr. */
  warn?: (line: string) => void;
}

/** Load the addon, or the JS fallbacks (and warn once through `warn`). */
export function loadNativeBindings(opts: LoadOptions = {}): NativeBindings {
  let reason: string;
  if (opts.disable) {
    reason = 'disabled by ETSD_NO_NATIVE=1';
  } else {
    const root = opts.addonPath === undefined ? packageRoot() : null;
    const file = opts.addonPath ?? (root === null ? null : path.join(root, ADDON_REL));
    if (file === null) {
      reason = 'no package.json found above ' + fileURLToPath(import.meta.url);
    } else if (!fs.existsSync(file)) {
      reason = `${file} not found (native build failed or skipped; run npm run build:native)`;
    } else {
      try {
        const addon = createRequire(import.meta.url)(file) as Addon;
        const b = nativeBindings(addon, file);
        // Both sides of the boundary: the addon must agree with the JS reference.
        const probe = Buffer.from('123456789');
        if (b.crc32c(probe) !== 0xe3069283 || b.crc32c(probe.subarray(4), b.crc32c(probe.subarray(0, 4))) !== 0xe3069283) {
          throw new Error('crc32c self-check failed');
        }
        return b;
      } catch (err) {
        reason = `${file}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  }
  const warn = opts.warn ?? ((line: string) => process.stderr.write(line + '\n'));
  warn(JSON.stringify({ level: 'warn', msg: 'etsd native addon not used; JS fallbacks in use', reason }));
  return jsBindings(reason);
}

/** The bindings for this thread, chosen once at import. */
export const bindings: NativeBindings = loadNativeBindings({ disable: process.env['ETSD_NO_NATIVE'] === '1' });

export const { crc32c, fallocate, fdatasync, pinThreadToCpu, native, fallbackReason, hardwareCrc } = bindings;
