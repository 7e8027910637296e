/**
 * The decoder for untrusted msgpack bytes: it checks the structure and builds the value in one pass.
 * A general decoder (msgpackr) recurses per nesting level and trusts length headers, so hostile bytes
 * could overflow the stack, make it allocate from a header announcing billions of entries, or build
 * objects from extension types; this one refuses all of that before allocating anything for it.
 * It used to be a separate walk in front of msgpackr: decoding the same bytes twice cost more than
 * everything else the server does with a small frame (bench/RESULTS.md).
 *
 * The values are msgpackr's for the options codec.ts sets (maps as Map, 64-bit integers as numbers,
 * binaries as Uint8Array copies); a property test holds the two to it. Recursion is bounded by
 * maxDepth, and nothing is allocated for a container before its header has been checked against the
 * bytes that remain (every value takes at least one byte).
 */
export interface GuardLimits {
  readonly maxDepth: number;
  /** Total array elements plus map entries in the whole frame. */
  readonly maxItems: number;
  readonly maxStringBytes: number;
}

/** Why untrusted bytes were refused; its message is the reason (e.g. 'nested too deep'). */
export class MsgpackRefusal extends Error {
  override readonly name = 'MsgpackRefusal';
}

const refuse = (reason: string): never => {
  throw new MsgpackRefusal(reason);
};

const utf8 = new TextDecoder();
// Floats are read through an 8-byte scratch in the platform's byte order (msgpack is big-endian).
const scratch = new Uint8Array(8);
const float64 = new Float64Array(scratch.buffer);
const float32 = new Float32Array(scratch.buffer, 0, 1);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const NO_BYTES = new Uint8Array(0);

class StrictDecoder {
  src: Uint8Array = NO_BYTES;
  pos = 0;
  end = 0;
  items = 0;
  maxItems = 0;
  maxDepth = 0;
  maxStringBytes = 0;

  value(depth: number): unknown {
    const p = this.pos;
    if (p >= this.end) return refuse('truncated');
    const b = this.src[p]!;
    this.pos = p + 1;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b <= 0xbf) return this.string(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.binary(this.uint(1));
      case 0xc5: return this.binary(this.uint(2));
      case 0xc6: return this.binary(this.uint(4));
      case 0xca: return this.float(4);
      case 0xcb: return this.float(8);
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xcf: return this.int64(false);
      case 0xd0: { const v = this.uint(1); return v > 0x7f ? v - 0x100 : v; }
      case 0xd1: { const v = this.uint(2); return v > 0x7fff ? v - 0x10000 : v; }
      case 0xd2: { const v = this.uint(4); return v > 0x7fffffff ? v - 0x100000000 : v; }
      case 0xd3: return this.int64(true);
      case 0xd9: return this.string(this.uint(1));
      case 0xda: return this.string(this.uint(2));
      case 0xdb: return this.string(this.uint(4));
      case 0xdc: return this.array(this.uint(2), depth);
      case 0xdd: return this.array(this.uint(4), depth);
      case 0xde: return this.map(this.uint(2), depth);
      case 0xdf: return this.map(this.uint(4), depth);
      default:
        return refuse(b === 0xc1 ? 'reserved byte 0xc1' : 'extension types are not allowed');
    }
  }

  /** A big-endian unsigned integer of `size` bytes. */
  uint(size: 1 | 2 | 4): number {
    const p = this.pos;
    if (p + size > this.end) return refuse('truncated');
    const s = this.src;
    this.pos = p + size;
    if (size === 1) return s[p]!;
    if (size === 2) return (s[p]! << 8) | s[p + 1]!;
    return s[p]! * 0x1000000 + ((s[p + 1]! << 16) | (s[p + 2]! << 8) | s[p + 3]!);
  }

  int64(signed: boolean): number {
    const high = this.uint(4);
    const low = this.uint(4);
    return (signed && high > 0x7fffffff ? high - 0x100000000 : high) * 0x100000000 + low;
  }

  float(size: 4 | 8): number {
    const p = this.pos;
    if (p + size > this.end) return refuse('truncated');
    const s = this.src;
    for (let i = 0; i < size; i++) scratch[littleEndian ? size - 1 - i : i] = s[p + i]!;
    this.pos = p + size;
    return size === 4 ? float32[0]! : float64[0]!;
  }

  /** Checks a container header announcing `children` values before anything is allocated for it. */
  container(children: number, depth: number): void {
    this.items += children;
    if (this.items > this.maxItems) refuse('too many items');
    if (children > this.end - this.pos) refuse('truncated');
    if (children > 0 && depth + 1 > this.maxDepth) refuse('nested too deep');
  }

  array(n: number, depth: number): unknown[] {
    this.container(n, depth);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  map(n: number, depth: number): Map<unknown, unknown> {
    this.container(n * 2, depth);
    const out = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      out.set(key, this.value(depth + 1));
    }
    return out;
  }

  /** Start and end of `n` bytes of string or binary data, checked against the limits. */
  span(n: number): number {
    if (n > this.maxStringBytes) refuse('string or binary too long');
    const start = this.pos;
    if (n > this.end - start) refuse('truncated');
    this.pos = start + n;
    return start;
  }

  string(n: number): string {
    const start = this.span(n);
    const s = this.src;
    // Label values and ids are short ASCII: building them by hand beats a TextDecoder call.
    if (n <= 32) {
      let out = '';
      for (let i = start; i < start + n; i++) {
        const c = s[i]!;
        if (c >= 0x80) return utf8.decode(s.subarray(start, start + n));
        out += String.fromCharCode(c);
      }
      return out;
    }
    return utf8.decode(s.subarray(start, start + n));
  }

  binary(n: number): Uint8Array {
    const start = this.span(n);
    // A copy: the transport may reuse the frame's memory once the handler returns.
    return Uint8Array.prototype.slice.call(this.src, start, start + n);
  }
}

// One decoder for the process: decoding is synchronous and runs no code of the caller's, so it cannot
// be re-entered.
const decoder = new StrictDecoder();

/** Decodes exactly one msgpack value within `limits`, or throws MsgpackRefusal saying why not. */
export function decodeMsgpackStrict(bytes: Uint8Array, limits: GuardLimits): unknown {
  const d = decoder;
  d.src = bytes;
  d.pos = 0;
  d.end = bytes.length;
  d.items = 0;
  d.maxItems = limits.maxItems;
  d.maxDepth = limits.maxDepth;
  d.maxStringBytes = limits.maxStringBytes;
  try {
    const value = d.value(0);
    if (d.pos !== d.end) refuse('trailing bytes');
    return value;
  } finally {
    d.src = NO_BYTES; // do not keep the frame alive
  }
}

/** Returns null when the bytes hold exactly one msgpack value within the limits, else why not. */
export function checkMsgpack(bytes: Uint8Array, limits: GuardLimits): string | null {
  try {
    decodeMsgpackStrict(bytes, limits);
    return null;
  } catch (err) {
    if (err instanceof MsgpackRefusal) return err.message;
    throw err;
  }
}
