// What etcd 3.4's gateway writes back: its headers, grpc-gateway v1's JSON
// error body ({"error", "message", "code"}) with the HTTP status of the gRPC
// code, and the stream error chunk. Words and statuses checked against a
// running etcd 3.4.23 (test/compat/gateway-cases.txt).

import type { ServerResponse } from 'node:http';
import { GrpcCode, type EtcdError } from '../common/errors.js';

/** etcd's client handler adds these to every response on the client port's HTTP side. */
const CORS = {
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': '*',
} as const;

/** grpc-gateway's runtime.HTTPStatusFromCode. */
export function httpStatusOf(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK: return 200;
    case GrpcCode.CANCELLED: return 408;
    case GrpcCode.UNKNOWN: return 500;
    case GrpcCode.INVALID_ARGUMENT: return 400;
    case GrpcCode.DEADLINE_EXCEEDED: return 504;
    case GrpcCode.NOT_FOUND: return 404;
    case GrpcCode.ALREADY_EXISTS: return 409;
    case GrpcCode.PERMISSION_DENIED: return 403;
    case GrpcCode.UNAUTHENTICATED: return 401;
    case GrpcCode.RESOURCE_EXHAUSTED: return 429;
    case GrpcCode.FAILED_PRECONDITION: return 412;
    case GrpcCode.ABORTED: return 409;
    case GrpcCode.OUT_OF_RANGE: return 400;
    case GrpcCode.UNIMPLEMENTED: return 501;
    case GrpcCode.INTERNAL: return 500;
    case GrpcCode.UNAVAILABLE: return 503;
    case GrpcCode.DATA_LOSS: return 500;
    default: return 500;
  }
}

/** Go's http.StatusText for the statuses above. */
const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout',
  409: 'Conflict', 412: 'Precondition Failed', 429: 'Too Many Requests', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** A 200 JSON answer to a unary call. */
export function replyJson(res: ServerResponse, json: string): void {
  res.writeHead(200, {
    ...CORS, 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc',
    'Content-Length': Buffer.byteLength(json),
  });
  res.end(json);
}

function errorBody(err: EtcdError): string {
  return JSON.stringify({ error: err.message, message: err.message, code: err.code });
}

/**
 * The error answer. An error from the call itself carries gRPC's trailer, as
 * etcd's does; a request the gateway could not decode (beforeCall) has none.
 */
export function replyError(res: ServerResponse, err: EtcdError, beforeCall: boolean): void {
  const body = errorBody(err);
  if (beforeCall) {
    res.writeHead(httpStatusOf(err.code), { ...CORS, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(httpStatusOf(err.code), { ...CORS, 'Content-Type': 'application/json', Trailer: 'Grpc-Trailer-Content-Type' });
  res.write(body);
  res.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
  res.end();
}

/** Go's http.Error, as grpc-gateway's mux answers an unknown path or method. */
export function replyPlain(res: ServerResponse, status: 404 | 405): void {
  const body = status === 404 ? 'Not Found\n' : 'Method Not Allowed\n';
  res.writeHead(status, {
    ...CORS, 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The head of a streamed answer: chunked JSON, one {"result": ...} per line. */
export function writeStreamHead(res: ServerResponse): void {
  res.writeHead(200, { ...CORS, 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' });
  res.flushHeaders();
}

export function streamResultChunk(json: string): string {
  return `{"result":${json}}\n`;
}

/** grpc-gateway's StreamError chunk (no delimiter follows it). */
export function streamErrorChunk(err: EtcdError): string {
  const http = httpStatusOf(err.code);
  return JSON.stringify({
    error: { grpc_code: err.code, http_code: http, message: err.message, http_status: STATUS_TEXT[http] ?? '' },
  });
}
