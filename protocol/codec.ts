import { ClientCloseReasons, CloseReasons, type CloseReason } from './close-codes.js';
import { encodeMsgpack } from './msgpack-node-encoder.js';
import { PROTOCOL_VERSION, type ProtocolVersion } from './version.js';
import { decodeMsgpackStrict, MsgpackRefusal, type GuardLimits } from './msgpack-strict-decoder.js';
import {
  ClientMessageType,
  ServerMessageType,
  MetricTypeCode,
  METRIC_TYPES,
  CLIENT_DROP_REASONS,
  type Ack,
  type Catalog,
  type CatalogMetric,
  type ClientMessage,
  type Delta,
  type Hello,
  type ServerMessage,
  type Welcome,
} from './messages.js';

// Encoding is msgpack-node-encoder.ts (msgpackr; the browser bundle swaps in its compact twin). Decoding
// is msgpack-strict-decoder.ts, which gives msgpackr's values for { mapsAsObjects: false, int64AsType:
// 'number' }: maps decode as Map, so a key like "__proto__" is plain data, and extension types (records,
// timestamps) are refused.

/** Limits for frames a server reads from clients. Depth 4 covers [delta, [samples, [sample]]] and maps. */
export const CLIENT_FRAME_GUARD: GuardLimits = /* @__PURE__ */ Object.freeze({ maxDepth: 4, maxItems: 1_000_000, maxStringBytes: 1024 });
/** Limits for frames a client reads from the server (the welcome carries the whole catalogue). */
export const SERVER_FRAME_GUARD: GuardLimits = Object.freeze({ maxDepth: 6, maxItems: 10_000_000, maxStringBytes: 4096 });

/**
 * Bytes that are not a message: carries the close its receiver answers with, so that a server turns
 * it into a close without mapping categories (CloseReasons.notMsgpack, badShape, unknownMessageType; a
 * client reading the server's frames: ClientCloseReasons.badServerFrame). The message says what was wrong.
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly close: CloseReason,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes → unknown, refusing anything outside the limits (a DecodeError with `refusal` as its close). */
function decodeUntrusted(bytes: Uint8Array, limits: GuardLimits, refusal: CloseReason): unknown {
  try {
    return decodeMsgpackStrict(bytes, limits);
  } catch (err) {
    if (err instanceof MsgpackRefusal) throw new DecodeError(refusal, err.message);
    throw err;
  }
}

/** A client's frame, as the server reads it: CLIENT_FRAME_GUARD, refused as not_msgpack. Still unknown: parse it. */
export function decodeClientFrame(bytes: Uint8Array): unknown {
  return decodeUntrusted(bytes, CLIENT_FRAME_GUARD, CloseReasons.notMsgpack);
}

/** The server's frame, as a client reads it: SERVER_FRAME_GUARD, refused as a bad frame from the server. */
export function decodeServerFrame(bytes: Uint8Array): unknown {
  return decodeUntrusted(bytes, SERVER_FRAME_GUARD, ClientCloseReasons.badServerFrame);
}

export function encode(value: unknown): Uint8Array {
  return encodeMsgpack(value);
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isString = (v: unknown): v is string => typeof v === 'string';
const shape = (what: string): DecodeError => new DecodeError(CloseReasons.badShape, what);
const serverShape = (what: string): DecodeError => new DecodeError(ClientCloseReasons.badServerFrame, what);

function stringMap(v: unknown, what: string): Map<string, string> {
  if (!(v instanceof Map)) throw shape(`${what} must be a map`);
  for (const [k, val] of v) if (!isString(k) || !isString(val)) throw shape(`${what} must map strings to strings`);
  return v as Map<string, string>;
}

function countMap(v: unknown, what: string): Map<string, number> {
  if (!(v instanceof Map)) throw shape(`${what} must be a map`);
  if (v.size === 0) return v as Map<string, number>; // the usual case; spares an iterator per frame
  for (const [k, val] of v) if (!isString(k) || !isUint(val)) throw shape(`${what} must map strings to counts`);
  return v as Map<string, number>;
}

/**
 * unknown → typed client message, or a DecodeError: badShape, or unknownMessageType for an array whose
 * first element names no client message. Samples stay unknown (checked per sample).
 */
export function parseClientMessage(value: unknown): ClientMessage {
  if (!Array.isArray(value)) throw shape('a message is a non-empty array');
  switch (value[0]) {
    case ClientMessageType.HELLO: {
      if (value.length !== 3) throw shape('hello has 3 elements');
      const labels = stringMap(value[1], 'hello labels');
      const r: unknown = value[2];
      let resume: Hello['resume'] = null;
      if (r !== null) {
        if (!Array.isArray(r) || r.length !== 3 || !isString(r[0]) || !isString(r[1]) || !isString(r[2])) {
          throw shape('hello resume is nil or [sessionId, token, epoch]');
        }
        resume = { sessionId: r[0], token: r[1], epoch: r[2] };
      }
      return { type: ClientMessageType.HELLO, labels, resume };
    }
    case ClientMessageType.DELTA: {
      if (value.length !== 5) throw shape('delta has 5 elements');
      const [, seq, catalogVersion, samples, drops] = value as unknown[];
      if (!isUint(seq) || seq < 1) throw shape('delta seq is an integer ≥ 1');
      if (!isUint(catalogVersion)) throw shape('delta catalogVersion is an unsigned integer');
      if (!Array.isArray(samples)) throw shape('delta samples is an array');
      return { type: ClientMessageType.DELTA, seq, catalogVersion, samples, drops: countMap(drops, 'delta drops') } satisfies Delta;
    }
    case ClientMessageType.GOODBYE:
      if (value.length !== 1) throw shape('goodbye has 1 element');
      return { type: ClientMessageType.GOODBYE };
    default:
      throw new DecodeError(CloseReasons.unknownMessageType, 'unknown message type');
  }
}

export function encodeHello(labels: Readonly<Record<string, string>>, resume: Hello['resume']): Uint8Array {
  return encode([ClientMessageType.HELLO, new Map(Object.entries(labels)), resume === null ? null : [resume.sessionId, resume.token, resume.epoch]]);
}

export function encodeDelta(seq: number, catalogVersion: number, samples: readonly unknown[], drops: ReadonlyMap<string, number>): Uint8Array {
  return encode([ClientMessageType.DELTA, seq, catalogVersion, samples, drops]);
}

export function encodeGoodbye(): Uint8Array {
  return encode([ClientMessageType.GOODBYE]);
}

export function encodeCatalog(catalog: Catalog): unknown[] {
  return catalog.metrics.map((m) => [m.name, MetricTypeCode[m.type], m.labelNames, m.labelValues, m.buckets]);
}

/** The welcome as `version` spells it: v2 adds maxFramesPerSecond to the limits. */
export function encodeWelcome(w: Omit<Welcome, 'type'>, encodedCatalog: unknown[] = encodeCatalog(w.catalog), version: ProtocolVersion = PROTOCOL_VERSION): Uint8Array {
  const l = w.limits;
  const limits = version >= 2 && l.maxFramesPerSecond !== null ? [l.maxFrameBytes, l.maxSamplesPerFrame, l.maxSampleValue, l.maxFramesPerSecond] : [l.maxFrameBytes, l.maxSamplesPerFrame, l.maxSampleValue];
  return encode([
    ServerMessageType.WELCOME, w.sessionId, w.token, w.epoch, w.lastAppliedSeq, w.resumed, w.flushIntervalMs,
    w.idleTimeoutMs, w.catalog.version, encodedCatalog, limits,
  ]);
}

/** A v2 ack that also says how many samples of the frame the session's sample rate dropped (> 0). */
export function encodeAckWithDrops(lastAppliedSeq: number, rateLimitedSamples: number): Uint8Array {
  return encode([ServerMessageType.ACK, lastAppliedSeq, rateLimitedSamples]);
}

const ACK_SLAB_BYTES = 8192;
// Allocated on first use: clients (browsers too) import this module but never send an ack.
let ackSlab = new Uint8Array(0);
let ackSlabUsed = 0;

/**
 * Acks are written by hand into slices of a shared slab: one goes out per applied frame, and a Packr
 * call plus its buffer cost more than the rest of acknowledging (bench/). The slices are never
 * written again, so a transport may keep one queued; off-heap memory also spares uWS a copy-out of
 * an on-heap typed array. The bytes are msgpackr's: [2, uint] in the shortest integer form.
 */
export function encodeAck(lastAppliedSeq: number): Uint8Array {
  const n = lastAppliedSeq;
  // msgpackr writes integers from 2^32 on as float64; such a sequence number is left to it.
  if (!(Number.isInteger(n) && n >= 0 && n < 0x1_0000_0000)) return encode([ServerMessageType.ACK, n]);
  const size = n < 0x80 ? 3 : n < 0x100 ? 4 : n < 0x10000 ? 5 : 7;
  if (ackSlabUsed + size > ackSlab.length) {
    ackSlab = new Uint8Array(ACK_SLAB_BYTES);
    ackSlabUsed = 0;
  }
  const out = ackSlab.subarray(ackSlabUsed, ackSlabUsed + size);
  ackSlabUsed += size;
  out[0] = 0x92;
  out[1] = ServerMessageType.ACK;
  if (size === 3) out[2] = n;
  else if (size === 4) {
    out[2] = 0xcc;
    out[3] = n;
  } else if (size === 5) {
    out[2] = 0xcd;
    out[3] = n >>> 8;
    out[4] = n & 0xff;
  } else {
    out[2] = 0xce;
    out[3] = n >>> 24;
    out[4] = (n >>> 16) & 0xff;
    out[5] = (n >>> 8) & 0xff;
    out[6] = n & 0xff;
  }
  return out;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function parseCatalogMetric(v: unknown): CatalogMetric {
  if (!Array.isArray(v) || v.length !== 5) throw serverShape('catalogue entry is [name, type, labelNames, labelValues, buckets]');
  const [name, typeCode, labelNames, labelValues, buckets] = v as unknown[];
  const type = METRIC_TYPES.find((t) => MetricTypeCode[t] === typeCode);
  if (!isString(name) || type === undefined || !isStringArray(labelNames)) throw serverShape('bad catalogue entry');
  if (!Array.isArray(labelValues) || labelValues.length !== labelNames.length || !labelValues.every(isStringArray)) {
    throw serverShape(`catalogue entry ${name}: labelValues must match labelNames`);
  }
  if (!Array.isArray(buckets) || !buckets.every((b) => typeof b === 'number' && Number.isFinite(b))) {
    throw serverShape(`catalogue entry ${name}: buckets are finite numbers`);
  }
  return { name, type, labelNames, labelValues: labelValues as string[][], buckets: buckets as number[] };
}

/** unknown → typed server message; the client trusts the server but still checks what it reads. */
export function parseServerMessage(value: unknown): ServerMessage {
  if (!Array.isArray(value) || value.length === 0) throw serverShape('a message is a non-empty array');
  if (value[0] === ServerMessageType.ACK) {
    const dropped: unknown = value.length === 3 ? value[2] : 0;
    if ((value.length !== 2 && value.length !== 3) || !isUint(value[1]) || !isUint(dropped)) throw serverShape('ack is [2, lastAppliedSeq] or [2, lastAppliedSeq, rateLimitedSamples]');
    return { type: ServerMessageType.ACK, lastAppliedSeq: value[1], rateLimitedSamples: dropped } satisfies Ack;
  }
  if (value[0] !== ServerMessageType.WELCOME) throw serverShape('unknown message type');
  if (value.length !== 11) throw serverShape('welcome has 11 elements');
  const [, sessionId, token, epoch, lastAppliedSeq, resumed, flushIntervalMs, idleTimeoutMs, catalogVersion, metrics, limits] = value as unknown[];
  if (!isString(sessionId) || !isString(token) || !isString(epoch)) throw serverShape('welcome ids are strings');
  if (!isUint(lastAppliedSeq) || typeof resumed !== 'boolean' || !isUint(flushIntervalMs) || !isUint(idleTimeoutMs) || !isUint(catalogVersion)) {
    throw serverShape('welcome numbers are unsigned integers');
  }
  if (!Array.isArray(metrics)) throw serverShape('welcome catalogue is an array');
  if (!Array.isArray(limits) || (limits.length !== 3 && limits.length !== 4) || !limits.every((l) => typeof l === 'number' && l > 0)) {
    throw serverShape('welcome limits are [maxFrameBytes, maxSamplesPerFrame, maxSampleValue] (v2: and maxFramesPerSecond)');
  }
  const [maxFrameBytes, maxSamplesPerFrame, maxSampleValue, maxFramesPerSecond] = limits as number[];
  return {
    type: ServerMessageType.WELCOME, sessionId, token, epoch, lastAppliedSeq, resumed, flushIntervalMs, idleTimeoutMs,
    catalog: { version: catalogVersion, metrics: metrics.map(parseCatalogMetric) },
    limits: { maxFrameBytes: maxFrameBytes!, maxSamplesPerFrame: maxSamplesPerFrame!, maxSampleValue: maxSampleValue!, maxFramesPerSecond: maxFramesPerSecond ?? null },
  } satisfies Welcome;
}

/** Longest msgpack form of a number the protocol sends: float64 (9 bytes); integers take at most that. */
const MAX_NUMBER_BYTES = 9;
/** Longest array header (array 32 is never needed for a sample: array 16 holds 65 535 elements). */
const MAX_ARRAY_HEADER_BYTES = 3;

/**
 * The most bytes one sample of a metric can take in a delta, whatever its values: [metricIndex,
 * labelIndex…, value…], every number at its longest form. A metric above what a frame can carry could
 * never be sent; the whitelist loader refuses it.
 */
export function maxSampleBytes(labelCount: number, valueCount: number): number {
  return MAX_ARRAY_HEADER_BYTES + (1 + labelCount + valueCount) * MAX_NUMBER_BYTES;
}

/** The most bytes of a delta besides its samples: type, seq, catalogue version, headers, and every client drop reason. */
export const MAX_DELTA_OVERHEAD_BYTES =
  1 + 1 + MAX_NUMBER_BYTES + MAX_NUMBER_BYTES + MAX_ARRAY_HEADER_BYTES + MAX_ARRAY_HEADER_BYTES +
  CLIENT_DROP_REASONS.reduce((n, reason) => n + 1 + reason.length + MAX_NUMBER_BYTES, 0);
