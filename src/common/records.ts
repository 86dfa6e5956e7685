// Structured, low-rate records that cross threads, peers, the raft log or the
// disk (membership, conf-change contexts, member attributes, member ops, the
// snapshot-install answer): MessagePack (msgpackr), behind a version byte.
//
//   u8 version | body
//   version 1: body = MessagePack; 64-bit integers as BigInt
//
// Records written before version 1 were JSON text: a first byte of '{' is
// read as such, so a data dir or a raft log from an older etsd still loads.
// Hot records (entries, ring records) keep their declared binary layouts.

import { Packr } from 'msgpackr';

export const RECORD_VERSION = 1;
const LEGACY_JSON_FIRST_BYTE = 0x7b; // '{'

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true });

export class RecordError extends Error {
  override name = 'RecordError';
}

export function packRecord(value: unknown): Buffer {
  const body = packr.pack(value);
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = RECORD_VERSION;
  body.copy(out, 1);
  return out;
}

/** The record's value, or (for a pre-version record) the parsed legacy JSON. The caller checks its shape. */
export function unpackRecord(bytes: Uint8Array): { version: number; value: unknown } {
  if (bytes.length === 0) throw new RecordError('empty record');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b[0] === LEGACY_JSON_FIRST_BYTE) return { version: 0, value: JSON.parse(b.toString('utf8')) as unknown };
  if (b[0] !== RECORD_VERSION) throw new RecordError(`record version ${b[0]} is newer than this etsd reads (${RECORD_VERSION})`);
  return { version: RECORD_VERSION, value: packr.unpack(b.subarray(1)) as unknown };
}

/** Shape checks for unpacked records: a record from disk or a peer is input, not trusted. */
export function field<T>(o: unknown, name: string, is: (v: unknown) => v is T): T {
  const v = (o as Record<string, unknown> | null)?.[name];
  if (!is(v)) throw new RecordError(`record field ${name} is missing or of the wrong type`);
  return v;
}

export const isString = (v: unknown): v is string => typeof v === 'string';
export const isNumber = (v: unknown): v is number => typeof v === 'number';
export const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
export const isBigInt = (v: unknown): v is bigint => typeof v === 'bigint';
export const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
export const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
/** msgpackr gives small integers back as numbers even with int64AsType: ids travel as BigInt when they are one. */
export const toBigInt = (v: unknown, name: string): bigint => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new RecordError(`record field ${name} is not an integer`);
};
