// --client-crl-file / --peer-crl-file as etcd 3.4 applies them (pkg/transport
// checkCRL): after the handshake, a connection whose certificates carry a
// serial number listed in the CRL is closed. Only the serial numbers count:
// not the CRL's signature nor its dates (etcd's test fixture expired in 2021
// and still works), so OpenSSL's own CRL check, which refuses an expired CRL,
// is not used. The file may be DER or PEM (x509.ParseCRL takes both).

const PEM_CRL_PREFIX = '-----BEGIN X509 CRL';

export class CrlParseError extends Error {}

interface Der { tag: number; start: number; end: number }

/** The DER element at off in buf: its tag and the bounds of its contents. */
function element(buf: Buffer, off: number, limit: number): Der {
  if (off + 2 > limit) throw new CrlParseError('x509: truncated CRL');
  const tag = buf[off]!;
  let len = buf[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new CrlParseError('x509: malformed CRL length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > limit) throw new CrlParseError('x509: truncated CRL');
  return { tag, start, end: start + len };
}

function children(buf: Buffer, parent: Der): Der[] {
  const out: Der[] = [];
  for (let off = parent.start; off < parent.end;) {
    const e = element(buf, off, parent.end);
    out.push(e);
    off = e.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;

/** A serial number as lower-case hex without leading zeros (Go's big.Int Bytes, in hex). */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+/, '') || '0';
}

/** The revoked serial numbers of a CRL (DER, or PEM "X509 CRL"). */
export function revokedSerials(file: Buffer): Set<string> {
  let der = file;
  const text = file.subarray(0, PEM_CRL_PREFIX.length).toString('latin1');
  if (text === PEM_CRL_PREFIX) {
    const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(file.toString('latin1'));
    if (m === null) throw new CrlParseError('x509: malformed PEM CRL');
    der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  }
  const list = element(der, 0, der.length);
  if (list.tag !== SEQUENCE) throw new CrlParseError('x509: malformed CRL');
  const tbs = children(der, list)[0];
  if (tbs === undefined || tbs.tag !== SEQUENCE) throw new CrlParseError('x509: malformed tbsCertList');
  // TBSCertList: version INTEGER OPTIONAL, signature, issuer, thisUpdate, nextUpdate OPTIONAL,
  // revokedCertificates SEQUENCE OPTIONAL, crlExtensions [0] OPTIONAL.
  const fields = children(der, tbs);
  let i = fields[0]?.tag === INTEGER ? 1 : 0;
  i += 2; // signature algorithm, issuer
  const revoked = fields.slice(i + 1).find((f) => f.tag === SEQUENCE);
  const out = new Set<string>();
  if (revoked === undefined) return out;
  for (const entry of children(der, revoked)) {
    const serial = children(der, entry)[0];
    if (serial === undefined || serial.tag !== INTEGER) throw new CrlParseError('x509: malformed revoked certificate entry');
    out.add(normalizeSerial(der.subarray(serial.start, serial.end).toString('hex')));
  }
  return out;
}
