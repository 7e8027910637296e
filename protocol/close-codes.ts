/**
 * Every WebSocket close of the protocol, in one catalogue per direction: what the server sends
 * (`CloseReasons`) and what the reference client sends (`ClientCloseReasons`). PROTOCOL.md's tables, the
 * server's `promstream_closes_total{code}` label values and the wire all come from here; a test keeps
 * PROTOCOL.md equal to it.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Never sent: a close frame without a code reads as 1005. */
  NO_STATUS: 1005,
  /** Never sent: a connection that ended without a close frame reads as 1006. */
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNSUPPORTED_VERSION: 4000,
  SESSION_NOT_RESUMABLE: 4001,
  SESSION_REPLACED: 4002,
  SESSION_LABELS_REJECTED: 4003,
  HANDSHAKE_TIMEOUT: 4004,
  IDLE_TIMEOUT: 4005,
  CATALOG_CHANGED: 4006,
  CLIENT_ACK_TIMEOUT: 4100,
  CLIENT_WELCOME_TIMEOUT: 4101,
  CLIENT_PAGE_CACHED: 4102,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * What a client does after the server closed its connection: 'backoff' reconnects with jittered backoff
 * and resumes, 'new-session' reconnects at once without resuming, 'never' stops and reports the error.
 * Decided by the code alone (a client acts on the code; the reason is for people), so every reason
 * sharing a code shares its next step by construction.
 */
export type RetryPolicy = 'backoff' | 'new-session' | 'never';

/**
 * The codes whose next step is not 'backoff'; every other code, in the catalogue or not, backs off.
 * Literal keys (each checked to be a CloseCode), so that the browser bundle needs no CloseCode object.
 */
const NOT_BACKOFF: Readonly<Partial<Record<number, RetryPolicy>>> = {
  4000: 'never', // UNSUPPORTED_VERSION
  4001: 'new-session', // SESSION_NOT_RESUMABLE
  4002: 'never', // SESSION_REPLACED
  4003: 'never', // SESSION_LABELS_REJECTED
} satisfies Partial<Record<CloseCode, RetryPolicy>>;

/** What a client does after the server closed with this code; codes outside the catalogue (1001, 1006, proxies' codes) back off. */
export function retryPolicyFor(code: number): RetryPolicy {
  return NOT_BACKOFF[code] ?? 'backoff';
}

/** A close code with the reason text that goes with it (≤ 123 bytes: RFC 6455 §5.5). */
export interface CloseReason {
  readonly code: CloseCode;
  readonly reason: string;
}

/** A close the server sends. */
export interface ServerCloseReason extends CloseReason {
  /** Label value in promstream_protocol_errors_total{reason}; null when the close is not an error. */
  readonly metric: string | null;
}

// Plain literals (no calls, no property reads), so that a bundle that never names a reason (the
// browser's) drops them all; the codes are CloseCode's (the type checks each).
/** Every reason the server (or its transport) closes a connection for. */
export const CloseReasons = /* @__PURE__ */ Object.freeze({
  // A client only sees 1000 after its own goodbye; from anything else (a proxy) it reconnects.
  goodbye: { code: 1000, reason: 'session ended', metric: null },
  helloExpected: { code: 1002, reason: 'first message must be hello', metric: 'hello_expected' },
  duplicateHello: { code: 1002, reason: 'hello sent twice', metric: 'duplicate_hello' },
  unknownMessageType: { code: 1002, reason: 'unknown message type', metric: 'unknown_message_type' },
  sequenceGap: { code: 1002, reason: 'sequence gap: resume to learn the last applied seq', metric: 'sequence_gap' },
  textFrame: { code: 1003, reason: 'binary msgpack frames only', metric: 'text_frame' },
  notMsgpack: { code: 1007, reason: 'frame is not valid msgpack within limits', metric: 'not_msgpack' },
  badShape: { code: 1007, reason: 'message has the wrong shape', metric: 'bad_shape' },
  frameTooBig: { code: 1009, reason: 'frame above maxFrameBytes', metric: 'frame_too_big' },
  tooManySamples: { code: 1009, reason: 'frame above maxSamplesPerFrame', metric: 'too_many_samples' },
  // The transports' own: a handler that threw (its state may be inconsistent), a peer not reading its acks.
  internalError: { code: 1011, reason: 'internal error', metric: 'internal_error' },
  sendQueueFull: { code: 1008, reason: 'send queue full', metric: 'send_queue_full' },
  frameRateLimit: { code: 1008, reason: 'frame rate above the limit', metric: 'frame_rate_limit' },
  tooManyFromAddress: { code: 1008, reason: 'too many connections from this address', metric: 'too_many_connections_per_ip' },
  serverFull: { code: 1013, reason: 'server full; try again later', metric: 'too_many_connections' },
  sessionTableFull: { code: 1013, reason: 'session table full; try again later', metric: 'too_many_sessions' },
  sessionBusy: { code: 1013, reason: 'session busy on another worker; try again later', metric: 'session_busy' },
  serverRestart: { code: 1012, reason: 'server restarting; reconnect and resume', metric: null },
  unsupportedVersion: { code: 4000, reason: 'unsupported protocol version; this server speaks promstream.v1', metric: 'unsupported_version' },
  sessionNotResumable: { code: 4001, reason: 'session unknown, expired or token mismatch; start a new session', metric: 'session_not_resumable' },
  sessionReplaced: { code: 4002, reason: 'session resumed on another connection', metric: null },
  sessionLabelsRejected: { code: 4003, reason: 'session labels missing or not allowed', metric: 'session_labels' },
  handshakeTimeout: { code: 4004, reason: 'no hello within the handshake timeout', metric: 'handshake_timeout' },
  idleTimeout: { code: 4005, reason: 'no message or pong within the idle timeout', metric: 'idle_timeout' },
  catalogChanged: { code: 4006, reason: 'catalogue version changed; reconnect for the new one', metric: 'catalog_changed' },
} satisfies Record<string, ServerCloseReason>);
export type CloseReasonName = keyof typeof CloseReasons;

/** A close the reference client sends. */
export interface ClientCloseReason extends CloseReason {
  /** Whether the server keeps the session resumable after it (false: the session ends). */
  readonly resumable: boolean;
}

/** Every reason the reference client closes its connection for. */
export const ClientCloseReasons = /* @__PURE__ */ Object.freeze({
  /** close(), or a page unloaded for good: after its goodbye, which is what ends the session. */
  endSession: { code: 1000, reason: 'client closed', resumable: false },
  /** The frame in flight was not acknowledged within the idle timeout: the path is dead, resume on a new one. */
  ackTimeout: { code: 4100, reason: 'no ack in time', resumable: true },
  /** The network changed with a frame in flight: resume on a fresh connection. */
  networkChanged: { code: 4100, reason: 'network changed before the ack', resumable: true },
  welcomeTimeout: { code: 4101, reason: 'no welcome in time', resumable: true },
  /** The page went into the back/forward cache: it leaves connected_clients, and resumes when shown again. */
  pageCached: { code: 4102, reason: 'page kept in the back/forward cache', resumable: true },
  badServerFrame: { code: 1007, reason: 'bad frame from server', resumable: true },
} satisfies Record<string, ClientCloseReason>);
export type ClientCloseReasonName = keyof typeof ClientCloseReasons;

let knownCodes: ReadonlySet<number> | undefined;

/**
 * Whether a close code is one a peer of this protocol sends or sees (both directions, plus 1001, 1005
 * and 1006): the label values of promstream_closes_total{code}. Any other code (a peer picks its code
 * freely) counts as "other", so that a client cannot grow the series.
 */
export function isKnownCloseCode(code: number): boolean {
  knownCodes ??= new Set<number>([
    ...Object.values(CloseReasons).map((r) => r.code),
    ...Object.values(ClientCloseReasons).map((r) => r.code),
    CloseCode.GOING_AWAY,
    CloseCode.NO_STATUS,
    CloseCode.ABNORMAL,
  ]);
  return knownCodes.has(code);
}

/** Whether a close reason is one of the server's catalogue (say, the one a DecodeError carries). */
export function isServerCloseReason(reason: CloseReason): reason is ServerCloseReason {
  return Object.values(CloseReasons).some((r) => r === reason);
}
