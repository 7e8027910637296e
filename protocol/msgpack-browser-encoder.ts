/**
 * The msgpack encoder of the browser bundle, standing in for msgpack-node-encoder.ts (msgpackr) there:
 * scripts/build-browser.mjs swaps the import. msgpackr is fast but weighs ~28 KB minified, more than the
 * whole client; this covers exactly what the protocol sends, and picks the same forms as msgpackr with
 * the options msgpack-node-encoder.ts sets (shortest integers up to 32 bits, float64 otherwise, shortest
 * string/array/map headers, no records, no extension types), so both produce the same bytes; a test holds
 * them to it. Decoding, in the browser as on the server, is msgpack-strict-decoder.ts.
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

/** msgpackr's bytes for the values the protocol carries (see msgpack-node-encoder.ts for its options). */
export function encodeMsgpack(value: unknown): Uint8Array {
  const w = new Writer();
  w.value(value);
  return w.result();
}
