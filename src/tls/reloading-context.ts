// Certificates re-read when their files change, as etcd re-reads them on every
// handshake (transport.TLSInfo's GetCertificate). Each new connection asks
// current(): one stat per file (a few microseconds, next to a handshake's
// ~1 ms of CPU) and, only when a file's mtime, size or inode moved, the files
// are read again and the options rebuilt. A rebuild that fails (a half-written
// file during rotation) keeps the previous certificates and is logged once per
// change, instead of failing every handshake until the writer is done.

import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';
import type { TlsVersion } from '../common/tls-flags.js';

export interface TlsFileSet {
  certFile: string;
  keyFile: string;
  /** '' when none. */
  trustedCaFile: string;
}

export interface TlsBase {
  ciphers: string | null;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
}

/** What node:tls takes (server or client side), from the current files. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  ciphers?: string;
  minVersion: TlsVersion;
  maxVersion: TlsVersion;
}

export interface ReloadLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

function signature(path: string): string {
  if (path === '') return '';
  const st = statSync(path, { throwIfNoEntry: false });
  return st === undefined ? 'missing' : `${st.mtimeMs}/${st.size}/${st.ino}`;
}

export class ReloadingTlsFiles {
  private sig: string;
  private material: TlsMaterial;
  private context: tls.SecureContext | null = null;
  private failedSig = '';
  /** Times the files were re-read after the first load. */
  reloads = 0;

  /** Reads the files now: a configuration that cannot load fails at start-up, not at the first client. */
  constructor(readonly files: TlsFileSet, private readonly base: TlsBase, private readonly log?: ReloadLog) {
    this.sig = this.signatures();
    this.material = this.read();
    tls.createSecureContext(this.material); // throws now on a bad key/cert pair
  }

  private signatures(): string {
    const f = this.files;
    return `${signature(f.certFile)}|${signature(f.keyFile)}|${signature(f.trustedCaFile)}`;
  }

  private read(): TlsMaterial {
    const f = this.files;
    const m: TlsMaterial = {
      cert: readFileSync(f.certFile), key: readFileSync(f.keyFile),
      minVersion: this.base.minVersion, maxVersion: this.base.maxVersion,
    };
    if (f.trustedCaFile !== '') m.ca = readFileSync(f.trustedCaFile);
    if (this.base.ciphers !== null) m.ciphers = this.base.ciphers;
    return m;
  }

  /**
   * Checks the files (one stat each) and returns the material to use for a new
   * connection, and whether it changed since the previous call.
   */
  refresh(): { material: TlsMaterial; changed: boolean } {
    const sig = this.signatures();
    if (sig === this.sig || sig === this.failedSig) return { material: this.material, changed: false };
    try {
      const m = this.read();
      tls.createSecureContext(m); // validate before switching over
      this.material = m;
      this.context = null;
      this.sig = sig;
      this.failedSig = '';
      this.reloads++;
      this.log?.info({ cert: this.files.certFile }, 'TLS certificate files changed; reloaded');
      return { material: m, changed: true };
    } catch (err) {
      this.failedSig = sig;
      this.log?.warn({ err, cert: this.files.certFile, key: this.files.keyFile }, 'failed to reload TLS certificate files; keeping the previous ones');
      return { material: this.material, changed: false };
    }
  }

  /** A SecureContext of the current files (for dialling), rebuilt only after a change. */
  secureContext(): tls.SecureContext {
    this.refresh();
    return this.context ??= tls.createSecureContext(this.material);
  }
}
