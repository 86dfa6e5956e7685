// A JSON reader for the gateway, because JSON.parse cannot do two things
// grpc-gateway's Go decoder does: keep 64-bit integers exact (lease ids and
// revisions arrive as JSON numbers from some clients), and report a syntax
// error in Go's encoding/json words ("invalid character 'x' looking for
// beginning of value"). It also reads one value at a time from a growing
// buffer, as json.Decoder does on a streaming request body.
// Numbers are kept as their source text (JsonNumber); the protobuf layer
// decides what they may be.

export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [k: string]: JsonValue };

/** A syntax error, worded as Go's encoding/json words it. */
export class JsonSyntaxError extends Error {}

/** The input ended inside a value (json.Decoder: "unexpected EOF"). */
export class JsonIncomplete extends Error {
  constructor() { super('unexpected EOF'); }
}

/** Nesting deeper than this is refused (Go's limit is 10000; ours is a stack bound). */
const MAX_DEPTH = 1000;

/** Go's quoteChar: how a byte is shown inside 'invalid character ...'. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c);
  return `'${q.slice(1, -1)}'`;
}

class Reader {
  pos = 0;
  constructor(private readonly s: string) {}

  private fail(c: string, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  private peek(): string {
    if (this.pos >= this.s.length) throw new JsonIncomplete();
    return this.s[this.pos]!;
  }

  skipSpace(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.s.length;
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
    this.skipSpace();
    const c = this.peek();
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.fail(c, 'looking for beginning of value');
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    for (let i = 0; i < word.length; i++) {
      const c = this.peek();
      if (c !== word[i]) this.fail(c, `in literal ${word} (expecting ${quoteChar(word[i]!)})`);
      this.pos++;
    }
    return v;
  }

  private number(): JsonNumber {
    const start = this.pos;
    const digits = (): number => {
      let n = 0;
      while (this.pos < this.s.length && this.s[this.pos]! >= '0' && this.s[this.pos]! <= '9') { this.pos++; n++; }
      return n;
    };
    if (this.s[this.pos] === '-') {
      this.pos++;
      const c = this.peek();
      if (!(c >= '0' && c <= '9')) this.fail(c, 'in numeric literal');
    }
    if (this.s[this.pos] === '0') this.pos++;
    else digits();
    if (this.s[this.pos] === '.') {
      this.pos++;
      const c = this.peek();
      if (!(c >= '0' && c <= '9')) this.fail(c, 'after decimal point in numeric literal');
      digits();
    }
    if (this.s[this.pos] === 'e' || this.s[this.pos] === 'E') {
      this.pos++;
      if (this.s[this.pos] === '+' || this.s[this.pos] === '-') this.pos++;
      const c = this.peek();
      if (!(c >= '0' && c <= '9')) this.fail(c, 'in exponent of numeric literal');
      digits();
    }
    // A number at the very end of a stream may go on in the next chunk.
    if (this.pos >= this.s.length) throw new JsonIncomplete();
    return new JsonNumber(this.s.slice(start, this.pos));
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.peek();
      if (c === '"') break;
      if (c === '\\') {
        this.pos++;
        const e = this.peek();
        if (e === 'u') {
          for (let i = 0; i < 4; i++) {
            this.pos++;
            const h = this.peek();
            if (!/[0-9a-fA-F]/.test(h)) this.fail(h, 'in \\u hexadecimal character escape');
          }
        } else if (!'"\\/bfnrt'.includes(e)) {
          this.fail(e, 'in string escape code');
        }
      } else if (c.charCodeAt(0) < 0x20) {
        this.fail(c, 'in string literal');
      }
      this.pos++;
    }
    this.pos++;
    return JSON.parse(this.s.slice(start, this.pos)) as string;
  }

  private array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.skipSpace();
    if (this.peek() === ']') { this.pos++; return out; }
    for (;;) {
      out.push(this.value(depth + 1));
      this.skipSpace();
      const c = this.peek();
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') { this.pos--; this.fail(c, 'after array element'); }
    }
  }

  private object(depth: number): { [k: string]: JsonValue } {
    this.pos++;
    const out: { [k: string]: JsonValue } = Object.create(null) as { [k: string]: JsonValue };
    this.skipSpace();
    if (this.peek() === '}') { this.pos++; return out; }
    for (;;) {
      this.skipSpace();
      const k = this.peek();
      if (k !== '"') this.fail(k, 'looking for beginning of object key string');
      const key = this.string();
      this.skipSpace();
      const colon = this.peek();
      if (colon !== ':') this.fail(colon, 'after object key');
      this.pos++;
      out[key] = this.value(depth + 1);
      this.skipSpace();
      const c = this.peek();
      if (c === '}') { this.pos++; return out; }
      if (c !== ',') this.fail(c, 'after object key:value pair');
      this.pos++;
    }
  }
}

/**
 * Reads the first JSON value of text, as json.Decoder.Decode does (what follows
 * it is not looked at). Returns undefined for text that is only whitespace.
 */
export function parseFirstValue(text: string): JsonValue | undefined {
  // The space lets a number that ends the text end (numbers wait for a delimiter).
  const r = new Reader(text + ' ');
  if (r.atEnd()) return undefined;
  return r.value(0);
}

/**
 * Reads text as exactly one JSON value, as json.Unmarshal does (jsonpb hands it
 * the unquoted text of a quoted 64-bit integer): trailing text is an error.
 */
export function parseWhole(text: string): JsonValue {
  const r = new Reader(text + ' ');
  let v: JsonValue;
  try {
    if (r.atEnd()) throw new JsonIncomplete();
    v = r.value(0);
  } catch (err) {
    if (err instanceof JsonIncomplete) throw new JsonSyntaxError('unexpected end of JSON input');
    throw err;
  }
  if (!r.atEnd()) throw new JsonSyntaxError(`invalid character ${quoteChar(text[r.pos]!)} after top-level value`);
  return v;
}

/**
 * Splits a growing stream of concatenated JSON values. push() returns every
 * complete value now available; the unfinished rest waits for more text.
 */
export class JsonStreamReader {
  private buf = '';

  constructor(private readonly maxPendingChars: number) {}

  push(text: string): JsonValue[] {
    this.buf += text;
    const out: JsonValue[] = [];
    for (;;) {
      const r = new Reader(this.buf);
      if (r.atEnd()) { this.buf = ''; return out; }
      try {
        out.push(r.value(0));
      } catch (err) {
        if (err instanceof JsonIncomplete) {
          if (this.buf.length > this.maxPendingChars) throw new JsonSyntaxError('request message too large');
          return out;
        }
        throw err;
      }
      this.buf = this.buf.slice(r.pos);
    }
  }

  /** The body ended: a number waiting for its next character is complete now. */
  end(): JsonValue[] {
    if (this.buf.trim() === '') return [];
    const out = this.push(' ');
    if (this.buf.trim() !== '') throw new JsonIncomplete();
    return out;
  }
}
