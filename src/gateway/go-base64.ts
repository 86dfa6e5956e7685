// Go's base64.StdEncoding.Decode, for JSON bytes fields: strict padding, CR
// and LF skipped, and the same "illegal base64 data at input byte N" offsets,
// since that message is what etcd's gateway answers for a bad key.

import { JsonRequestError } from './request-error.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

const corrupt = (at: number): JsonRequestError => new JsonRequestError(`illegal base64 data at input byte ${at}`);

const PLAIN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeGoBase64(text: string): Buffer {
  // The common case, well-formed and without line breaks, decodes natively.
  if (PLAIN.test(text)) return Buffer.from(text, 'base64');
  // encoding/json hands the decoder the UTF-8 bytes of the string.
  const src = Buffer.from(text, 'utf8');
  const out: number[] = [];
  let si = 0;
  const isNl = (c: number | undefined) => c === 0x0a || c === 0x0d;
  for (;;) {
    const q = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let ended = false;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        throw corrupt(si - j);
      }
      const c = src[si]!;
      si++;
      const d = DECODE[c]!;
      if (d >= 0) { q[j] = d; continue; }
      if (isNl(c)) { j--; continue; }
      if (c !== 0x3d) throw corrupt(si - 1);
      // Padding: only after two or three symbols.
      if (j === 0 || j === 1) throw corrupt(si - 1);
      if (j === 2) {
        while (si < src.length && isNl(src[si])) si++;
        if (si === src.length) throw corrupt(src.length);
        if (src[si] !== 0x3d) throw corrupt(si - 1);
        si++;
      }
      while (si < src.length && isNl(src[si])) si++;
      if (si < src.length) throw corrupt(si);
      dlen = j;
      ended = true;
      break;
    }
    const v = (q[0]! << 18) | (q[1]! << 12) | (q[2]! << 6) | q[3]!;
    if (dlen >= 2) out.push((v >> 16) & 0xff);
    if (dlen >= 3) out.push((v >> 8) & 0xff);
    if (dlen >= 4) out.push(v & 0xff);
    if (ended) return Buffer.from(out);
  }
}
