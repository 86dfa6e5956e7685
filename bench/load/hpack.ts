// HPACK request headers for the raw HTTP/2 client: constant header blocks that
// use no dynamic table and no Huffman (literal without indexing), so they can be
// built once. Responses are decoded with the server's decoder
// (src/server/h2raw/hpack.ts).

function encInt(out: number[], first: number, prefix: number, v: number): void {
  const mask = (1 << prefix) - 1;
  if (v < mask) { out.push(first | v); return; }
  out.push(first | mask);
  v -= mask;
  while (v >= 128) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
}

function encStr(out: number[], s: string): void {
  encInt(out, 0, 7, s.length);
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
}

/** The request header block for a gRPC call: no dynamic table, no Huffman. */
export function grpcRequestHeaders(path: string, authority: string): Buffer {
  const out: number[] = [0x83, 0x86];                   // :method POST, :scheme http
  encInt(out, 0x00, 4, 4); encStr(out, path);           // :path (name index 4)
  encInt(out, 0x00, 4, 1); encStr(out, authority);      // :authority (name index 1)
  encInt(out, 0x00, 4, 31); encStr(out, 'application/grpc'); // content-type (name index 31)
  out.push(0x00); encStr(out, 'te'); encStr(out, 'trailers');
  return Buffer.from(out);
}
