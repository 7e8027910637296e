/**
 * Typed messages. On the wire each is a msgpack array whose first element is the message type
 * (see PROTOCOL.md for the grammar and byte-exact examples). Each direction numbers its own types.
 */
export const ClientMessageType = {
  HELLO: 1,
  DELTA: 2,
  GOODBYE: 3,
} as const;
export type ClientMessageType = (typeof ClientMessageType)[keyof typeof ClientMessageType];

export const ServerMessageType = {
  WELCOME: 1,
  ACK: 2,
} as const;
export type ServerMessageType = (typeof ServerMessageType)[keyof typeof ServerMessageType];

export const MetricTypeCode = { counter: 0, gauge: 1, histogram: 2 } as const;
export type MetricType = keyof typeof MetricTypeCode;
export const METRIC_TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram'];

/** Reasons a sample is dropped; the label values of promstream_rejected_samples_total{reason}. */
export const RejectReason = {
  NOT_ARRAY: 'not_array',
  UNKNOWN_METRIC: 'unknown_metric',
  LABEL_NOT_ALLOWED: 'label_not_allowed',
  WRONG_LENGTH: 'wrong_length',
  NOT_A_NUMBER: 'not_a_number',
  NON_FINITE: 'non_finite',
  NEGATIVE: 'negative',
  NOT_INTEGER: 'not_integer',
  TOO_LARGE: 'too_large',
  BAD_BUCKET_COUNT: 'bad_bucket_count',
  CLIENT_BUFFER_FULL: 'client_buffer_full',
  STALE_CATALOG: 'stale_catalog',
  RATE_LIMITED: 'rate_limited',
  SAMPLE_TOO_BIG: 'sample_too_big',
  CLIENT_ERROR: 'client_error',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];
export const REJECT_REASONS: readonly RejectReason[] = /* @__PURE__ */ Object.freeze(Object.values(RejectReason));
/** Reasons the server itself drops a sample for: the label values of promstream_rejected_samples_total{reason}. */
export const SERVER_REJECT_REASONS: readonly RejectReason[] = /* @__PURE__ */ Object.freeze([
  RejectReason.NOT_ARRAY,
  RejectReason.UNKNOWN_METRIC,
  RejectReason.LABEL_NOT_ALLOWED,
  RejectReason.WRONG_LENGTH,
  RejectReason.NOT_A_NUMBER,
  RejectReason.NON_FINITE,
  RejectReason.NEGATIVE,
  RejectReason.NOT_INTEGER,
  RejectReason.TOO_LARGE,
  RejectReason.BAD_BUCKET_COUNT,
  RejectReason.RATE_LIMITED,
]);
/**
 * Reasons a client may report for samples it dropped locally (the server trusts only these names): the
 * label values of promstream_client_dropped_samples_total{reason}, kept apart from the server's own.
 */
export const CLIENT_DROP_REASONS: readonly RejectReason[] = /* @__PURE__ */ Object.freeze([
  RejectReason.UNKNOWN_METRIC,
  RejectReason.LABEL_NOT_ALLOWED,
  RejectReason.NOT_A_NUMBER,
  RejectReason.NON_FINITE,
  RejectReason.NEGATIVE,
  RejectReason.TOO_LARGE,
  RejectReason.CLIENT_BUFFER_FULL,
  RejectReason.STALE_CATALOG,
  RejectReason.SAMPLE_TOO_BIG,
  RejectReason.CLIENT_ERROR,
]);

export interface ResumeRequest {
  readonly sessionId: string;
  readonly token: string;
  readonly epoch: string;
}

/** client → server, first message on every connection. */
export interface Hello {
  readonly type: typeof ClientMessageType.HELLO;
  readonly labels: ReadonlyMap<string, string>;
  readonly resume: ResumeRequest | null;
}

/**
 * A sample is an array: [metricIndex, ...labelValueIndexes, ...values]. Values: counter [increment],
 * gauge [value], histogram [sum, count_0 … count_B] (per-bucket counts, last is +Inf).
 * Samples stay `unknown` here: the server checks each one against its catalogue.
 */
export interface Delta {
  readonly type: typeof ClientMessageType.DELTA;
  readonly seq: number;
  readonly catalogVersion: number;
  readonly samples: readonly unknown[];
  /** Samples the client dropped locally, by reason. */
  readonly drops: ReadonlyMap<string, number>;
}

export interface Goodbye {
  readonly type: typeof ClientMessageType.GOODBYE;
}

export type ClientMessage = Hello | Delta | Goodbye;

export interface CatalogMetric {
  readonly name: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly labelValues: readonly (readonly string[])[];
  /** Upper bounds, ascending, without +Inf; empty unless histogram. */
  readonly buckets: readonly number[];
}

export interface Catalog {
  readonly version: number;
  readonly metrics: readonly CatalogMetric[];
}

export interface WireLimits {
  readonly maxFrameBytes: number;
  readonly maxSamplesPerFrame: number;
  /** Largest counter increment, observation or gauge magnitude the server accepts. */
  readonly maxSampleValue: number;
  /** Frames (and pings, pongs) per second the server allows a connection (v2; null from a v1 server). */
  readonly maxFramesPerSecond: number | null;
}

/** server → client, answer to hello. */
export interface Welcome {
  readonly type: typeof ServerMessageType.WELCOME;
  readonly sessionId: string;
  readonly token: string;
  readonly epoch: string;
  readonly lastAppliedSeq: number;
  readonly resumed: boolean;
  readonly flushIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly catalog: Catalog;
  readonly limits: WireLimits;
}

/** server → client: every frame up to lastAppliedSeq is applied (cumulative). */
export interface Ack {
  readonly type: typeof ServerMessageType.ACK;
  readonly lastAppliedSeq: number;
  /** v2: samples of that frame the server dropped because the session was over its sample rate (0: none, or v1). */
  readonly rateLimitedSamples: number;
}

export type ServerMessage = Welcome | Ack;
