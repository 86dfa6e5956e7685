// JSON <-> protobuf bytes with the semantics etcd 3.4's gateway has
// (grpc-gateway v1's JSONPb{OrigName: true} over golang/protobuf jsonpb):
// - output: field names as written in the .proto (ID, TTL, cluster_id), zero
//   values omitted (EmitDefaults false) except a set oneof member, 64-bit
//   integers as strings, 32-bit as numbers, bytes as standard base64, enums
//   by name, fields in declaration order;
// - input: the .proto name or its lowerCamel JSON name, unknown fields
//   ignored, null as absent, integers as numbers or strings, enums by name or
//   number, bytes as strict standard base64; errors worded as Go words them.
// Only the gateway loads this (a keepCase copy of the .proto files), so the
// gRPC path never pays for it.

import { isAbsolute, join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_FILES, protoIncludeRoot } from '../proto/registry.js';
import { JsonNumber, parseWhole, type JsonValue } from './json-text.js';
import { decodeGoBase64 } from './go-base64.js';
import { JsonRequestError } from './request-error.js';


let root: protobuf.Root | null = null;

function keepCaseRoot(): protobuf.Root {
  if (root !== null) return root;
  const include = protoIncludeRoot();
  const r = new protobuf.Root();
  r.resolvePath = (_origin: string, target: string): string => (isAbsolute(target) ? target : join(include, target));
  r.loadSync(PROTO_FILES as string[], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

export function lookupMessage(fullName: string): protobuf.Type {
  return keepCaseRoot().lookupType(fullName);
}

/** golang/protobuf's JSON name: underscores dropped, the letter after each upper-cased. */
function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

/** Go's name for a message or enum type: package, then nested names joined by '_'. */
function goTypeName(t: protobuf.ReflectionObject): string {
  const full = t.fullName.replace(/^\./, '');
  const dot = full.indexOf('.');
  return dot < 0 ? full : full.slice(0, dot + 1) + full.slice(dot + 1).replace(/\./g, '_');
}

function jsonKind(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (v instanceof JsonNumber) return 'number';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

const cannot = (v: JsonValue, goType: string, detail = ''): JsonRequestError =>
  new JsonRequestError(`json: cannot unmarshal ${jsonKind(v)}${detail} into Go value of type ${goType}`);

const INT_RANGE: Record<string, [bigint, bigint]> = {
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  sint64: [-(1n << 63n), (1n << 63n) - 1n],
  sfixed64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  fixed64: [0n, (1n << 64n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  sint32: [-(1n << 31n), (1n << 31n) - 1n],
  sfixed32: [-(1n << 31n), (1n << 31n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  fixed32: [0n, (1n << 32n) - 1n],
};
const GO_INT: Record<string, string> = {
  int64: 'int64', sint64: 'int64', sfixed64: 'int64', uint64: 'uint64', fixed64: 'uint64',
  int32: 'int32', sint32: 'int32', sfixed32: 'int32', uint32: 'uint32', fixed32: 'uint32',
};

/** An integer field's value: a JSON number, or a string holding one (jsonpb strips the quotes). */
function readInt(v: JsonValue, type: string, goType = GO_INT[type]!): string {
  let text: string;
  if (v instanceof JsonNumber) text = v.text;
  else if (typeof v === 'string') {
    // jsonpb unquotes the string and json.Unmarshals what is inside.
    const inner = parseWhole(v);
    if (!(inner instanceof JsonNumber)) throw cannot(inner, goType);
    text = inner.text;
  } else throw cannot(v, goType);
  const [lo, hi] = INT_RANGE[type]!;
  if (!/^-?(0|[1-9][0-9]*)$/.test(text) || BigInt(text) < lo || BigInt(text) > hi) {
    throw new JsonRequestError(`json: cannot unmarshal number ${text} into Go value of type ${goType}`);
  }
  return text;
}

function readScalar(field: protobuf.Field, v: JsonValue): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string') {
      // Own names only: protobufjs's values object inherits the id -> name map.
      const n = Object.prototype.hasOwnProperty.call(rt.values, v) ? rt.values[v] : undefined;
      if (n === undefined) throw new JsonRequestError(`unknown value ${JSON.stringify(v)} for enum ${goTypeName(rt)}`);
      return n;
    }
    // A number is json.Unmarshal'ed into the enum's Go type (an int32).
    if (v instanceof JsonNumber) return Number(readInt(v, 'int32', goTypeName(rt)));
    throw cannot(v, goTypeName(rt));
  }
  if (rt instanceof protobuf.Type) return readMessage(rt, v);
  switch (field.type) {
    case 'bool':
      if (typeof v !== 'boolean') throw cannot(v, 'bool');
      return v;
    case 'string':
      if (typeof v !== 'string') throw cannot(v, 'string');
      return v;
    case 'bytes':
      if (typeof v !== 'string') throw cannot(v, '[]uint8');
      return decodeGoBase64(v);
    case 'double': case 'float':
      if (!(v instanceof JsonNumber)) throw cannot(v, field.type === 'double' ? 'float64' : 'float32');
      return Number(v.text);
    default: {
      if (GO_INT[field.type] === undefined) throw new JsonRequestError(`unsupported field type ${field.type}`);
      const text = readInt(v, field.type);
      return field.type.endsWith('32') ? Number(text) : text;
    }
  }
}

function readMessage(type: protobuf.Type, v: JsonValue): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof JsonNumber) {
    throw cannot(v, 'map[string]json.RawMessage');
  }
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    let raw = v[field.name];
    if (raw === undefined) raw = v[lowerCamel(field.name)];
    if (raw === undefined || raw === null) continue;
    if (field.repeated) {
      if (!Array.isArray(raw)) throw cannot(raw, '[]json.RawMessage');
      out[field.name] = raw.map((item) => readScalar(field, item));
    } else {
      out[field.name] = readScalar(field, raw);
    }
  }
  return out;
}

/** The protobuf bytes of a JSON request (an absent body is the empty message). */
export function jsonToProto(type: protobuf.Type, v: JsonValue | undefined): Buffer {
  const obj = v === undefined ? {} : readMessage(type, v);
  const bytes = type.encode(type.fromObject(obj)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------- output

interface LongLike { low: number; high: number; unsigned: boolean; toString(): string }

/** protobufjs hands 64-bit fields back as Long (the long package). */
function isLong(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && typeof (v as LongLike).low === 'number' && typeof (v as LongLike).high === 'number';
}

function isZero(field: protobuf.Field, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (field.resolvedType instanceof protobuf.Type) return false;
  if (typeof v === 'number') return v === 0;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return v === '';
  if (v instanceof Uint8Array) return v.length === 0;
  if (isLong(v)) return v.low === 0 && v.high === 0;
  return false;
}

function scalarJson(field: protobuf.Field, v: unknown): string {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageJson(rt, v as protobuf.Message);
  if (rt instanceof protobuf.Enum) {
    const name = rt.valuesById[v as number];
    return name === undefined ? String(v) : JSON.stringify(name);
  }
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
  if (isLong(v)) return `"${v.toString()}"`;
  if (typeof v === 'number' && /64$/.test(field.type)) return `"${v}"`;
  return JSON.stringify(v);
}

function messageJson(type: protobuf.Type, msg: protobuf.Message): string {
  const m = msg as unknown as Record<string, unknown>;
  const parts: string[] = [];
  for (const field of type.fieldsArray) {
    const own = Object.prototype.hasOwnProperty.call(m, field.name);
    if (!own) continue;
    const v = m[field.name];
    if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      parts.push(`${JSON.stringify(field.name)}:[${arr.map((x) => scalarJson(field, x)).join(',')}]`);
      continue;
    }
    // A oneof member is a set pointer in Go: written even when its value is zero.
    if (field.partOf === null && isZero(field, v)) continue;
    if (v === null || v === undefined) continue;
    parts.push(`${JSON.stringify(field.name)}:${scalarJson(field, v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** The JSON text of protobuf bytes, as etcd's gateway writes it. */
export function protoToJson(type: protobuf.Type, bytes: Uint8Array): string {
  return messageJson(type, type.decode(bytes));
}
