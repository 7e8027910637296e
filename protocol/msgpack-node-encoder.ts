/**
 * The msgpack encoder on Node (server and Node client): msgpackr, with the only options the project
 * uses. No records or structured clone: nothing but plain arrays, maps, strings and numbers goes on the
 * wire, so any msgpack decoder reads it. The browser bundle replaces this file with
 * msgpack-browser-encoder.ts (same bytes, a tenth of the size); decoding is msgpack-strict-decoder.ts
 * everywhere.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, structuredClone: false, variableMapSize: true });

export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}
