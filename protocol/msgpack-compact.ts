/**
 * A small msgpack codec for the browser bundle, standing in for msgpackr there (scripts/build-browser.mjs
 * swaps the import). msgpackr is fast but weighs ~28 KB minified, more than the whole client; this
 * covers exactly what the protocol uses, with msgpackr's semantics for the options codec.ts sets:
 * maps decode as Map (mapsAsObjects: false), no records, no extension types, 64-bit integers as numbers.
 * Encoding picks the same forms as msgpackr (shortest integers up to 32 bits, float64 otherwise, shortest
 * string/array/map headers), so both produce the same bytes; a test holds them to it.
 *
 * It serves the browser bundle, which decodes only the server's frames; the server decodes untrusted
 * client frames with the strict one-pass decoder in msgpack-guard.ts. This decoder still refuses what it
 * does not know rather than guessing.
 */

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A type byte followed by an unsigned big-endian integer of `size` bytes. */
  head(type: number, size: 1 | 2 | 4, n: number): void {
    this.room(1 + size);
    this.buf[this.pos++] = type;
    if (size === 1) this.view.setUint8(this.pos, n);
    else if (size === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += size;
  }

  /** A container or string header: fix form below `fixLimit`, else 8 (strings only), 16 or 32 bits. */
  sized(fixBase: number, fixLimit: number, type8: number | null, type16: number, n: number): void {
    if (n < fixLimit) this.byte(fixBase | n);
    else if (type8 !== null && n < 0x100) this.head(type8, 1, n);
    else if (n < 0x10000) this.head(type16, 2, n);
    else this.head(type16 + 1, 4, n);
  }

  number(v: number): void {
    if (v >>> 0 === v) {
      if (v < 0x80) this.byte(v);
      else if (v < 0x100) this.head(0xcc, 1, v);
      else if (v < 0x10000) this.head(0xcd, 2, v);
      else this.head(0xce, 4, v);
    } else if (v >> 0 === v) {
      this.room(5);
      if (v >= -0x20) this.buf[this.pos++] = 0x100 + v;
      else if (v >= -0x80) {
        this.buf[this.pos++] = 0xd0;
        this.view.setInt8(this.pos++, v);
      } else if (v >= -0x8000) {
        this.buf[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, v);
        this.pos += 2;
      } else {
        this.buf[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, v);
        this.pos += 4;
      }
    } else {
      this.room(9);
      this.buf[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
    }
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  value(v: unknown): void {
    if (v === null || v === undefined) this.byte(0xc0);
    else if (v === false) this.byte(0xc2);
    else if (v === true) this.byte(0xc3);
    else if (typeof v === 'number') this.number(v);
    else if (typeof v === 'string') {
      const utf8 = encoder.encode(v);
      this.sized(0xa0, 0x20, 0xd9, 0xda, utf8.length);
      this.bytes(utf8);
    } else if (Array.isArray(v)) {
      this.sized(0x90, 0x10, null, 0xdc, v.length);
      for (const item of v) this.value(item);
    } else if (v instanceof Map) {
      this.sized(0x80, 0x10, null, 0xde, v.size);
      for (const [k, item] of v) {
        this.value(k);
        this.value(item);
      }
    } else if (v instanceof Uint8Array) {
      if (v.length < 0x100) this.head(0xc4, 1, v.length);
      else if (v.length < 0x10000) this.head(0xc5, 2, v.length);
      else this.head(0xc6, 4, v.length);
      this.bytes(v);
    } else if (typeof v === 'object') {
      const keys = Object.keys(v);
      this.sized(0x80, 0x10, null, 0xde, keys.length);
      for (const k of keys) {
        this.value(k);
        this.value((v as Record<string, unknown>)[k]);
      }
    } else throw new TypeError(`msgpack: cannot encode a ${typeof v}`);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const encoder = new TextEncoder();
// Lenient like msgpackr: invalid UTF-8 becomes U+FFFD rather than an error.
const decoder = new TextDecoder();

class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private take(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new RangeError('msgpack: truncated');
    this.pos += n;
    return at;
  }

  private u(size: 1 | 2 | 4): number {
    const at = this.take(size);
    return size === 1 ? this.view.getUint8(at) : size === 2 ? this.view.getUint16(at) : this.view.getUint32(at);
  }

  private str(n: number): string {
    const at = this.take(n);
    return decoder.decode(this.bytes.subarray(at, at + n));
  }

  private array(n: number): unknown[] {
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value();
    return out;
  }

  private map(n: number): Map<unknown, unknown> {
    const out = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) {
      const k = this.value();
      out.set(k, this.value());
    }
    return out;
  }

  value(): unknown {
    const b = this.u(1);
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f);
    if (b <= 0x9f) return this.array(b & 0x0f);
    if (b <= 0xbf) return this.str(b & 0x1f);
    const v = this.view;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: case 0xc5: case 0xc6: {
        const n = this.u(b === 0xc4 ? 1 : b === 0xc5 ? 2 : 4);
        const at = this.take(n);
        return this.bytes.slice(at, at + n);
      }
      case 0xca: return v.getFloat32(this.take(4));
      case 0xcb: return v.getFloat64(this.take(8));
      case 0xcc: return this.u(1);
      case 0xcd: return this.u(2);
      case 0xce: return this.u(4);
      // 64-bit integers as (possibly rounded) numbers, as msgpackr's int64AsType: 'number'.
      case 0xcf: return v.getUint32(this.take(8)) * 2 ** 32 + v.getUint32(this.pos - 4);
      case 0xd0: return v.getInt8(this.take(1));
      case 0xd1: return v.getInt16(this.take(2));
      case 0xd2: return v.getInt32(this.take(4));
      case 0xd3: return v.getInt32(this.take(8)) * 2 ** 32 + v.getUint32(this.pos - 4);
      case 0xd9: return this.str(this.u(1));
      case 0xda: return this.str(this.u(2));
      case 0xdb: return this.str(this.u(4));
      case 0xdc: return this.array(this.u(2));
      case 0xdd: return this.array(this.u(4));
      case 0xde: return this.map(this.u(2));
      case 0xdf: return this.map(this.u(4));
      default: throw new RangeError(`msgpack: type byte 0x${b.toString(16)} is not supported`);
    }
  }
}

/** msgpackr's Packr, as far as codec.ts uses it (options are accepted and fixed as described above). */
export class Packr {
  constructor(_options?: unknown) {}
  pack(value: unknown): Uint8Array {
    const w = new Writer();
    w.value(value);
    return w.result();
  }
}

/** msgpackr's Unpackr, as far as codec.ts uses it. */
export class Unpackr {
  constructor(_options?: unknown) {}
  unpack(bytes: Uint8Array): unknown {
    const r = new Reader(bytes);
    const value = r.value();
    if (r.pos !== bytes.length) throw new RangeError('msgpack: trailing bytes');
    return value;
  }
}
