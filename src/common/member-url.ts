// A member URL (listen, advertise, peer) as etcd 3.4 reads it: http://,
// https://, unix:// and unixs://. etcd listens on and dials a unix:// URL's
// "host:port" as a socket path, taken literally and relative to the working
// directory (pkg/transport NewListener(u.Host, "unix"), and its unix transport
// dials req.URL.Host); unixs:// is that socket with TLS on it.

export interface MemberAddr {
  host: string;
  port: number;
  /** https:// or unixs:// (TLS). */
  secure: boolean;
  /** unix:// and unixs://: the socket path (the URL's host:port, literally). */
  path?: string;
}

/** The schemes etcd's types.NewURLs accepts. */
export const MEMBER_URL_SCHEMES: readonly string[] = ['http:', 'https:', 'unix:', 'unixs:'];

export function isUnixUrl(url: URL): boolean {
  return url.protocol === 'unix:' || url.protocol === 'unixs:';
}

export function isSecureUrl(url: URL): boolean {
  return url.protocol === 'https:' || url.protocol === 'unixs:';
}

/**
 * Parses a member URL; a URL without a port gets defaultPort (by default 80
 * for http, 443 for https). Throws TypeError on other schemes.
 */
export function parseMemberUrl(raw: string, defaultPort?: number): MemberAddr {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError(`invalid URL ${JSON.stringify(raw)}`);
  }
  if (!MEMBER_URL_SCHEMES.includes(u.protocol)) {
    throw new TypeError(`URL scheme must be http, https, unix, or unixs: ${raw}`);
  }
  const secure = isSecureUrl(u);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port !== '' ? Number(u.port) : defaultPort ?? (secure ? 443 : 80);
  if (isUnixUrl(u)) return { host, port, secure, path: u.host };
  return { host, port, secure };
}
