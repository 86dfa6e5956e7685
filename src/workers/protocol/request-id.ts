// Request ids: unique among a process's in-flight requests, and tagged with
// their member. They ride inside forwarded entries, so a member applying the
// log answers only its own requests (others' answers would cross the ring to
// be dropped). The low 10 bits of the member id sit from bit 43 up; ids stay
// below 2^53 so they travel exactly as float64.

const REQ_ID_TAG_UNIT = 2 ** 43;

export function reqIdBase(memberId: bigint): number { return Number(memberId & 0x3ffn) * REQ_ID_TAG_UNIT; }

export function isOwnReqId(reqId: number, memberId: bigint): boolean {
  return Math.floor(reqId / REQ_ID_TAG_UNIT) === Number(memberId & 0x3ffn);
}
