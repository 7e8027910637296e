/**
 * Every close the server sends, in one catalogue. PROTOCOL.md lists the same table; a test keeps them equal.
 * `retry` tells the client what to do: 'backoff' reconnects with jittered backoff and resumes,
 * 'new-session' reconnects at once without resuming, 'never' stops and reports the error.
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
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
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export type RetryPolicy = 'backoff' | 'new-session' | 'never';

export interface CloseReason {
  readonly code: CloseCode;
  /** Sent as the close reason; at most 123 bytes (RFC 6455 §5.5). */
  readonly reason: string;
  /** Label value in promstream_protocol_errors_total{reason}; null when the close is not an error. */
  readonly metric: string | null;
  readonly retry: RetryPolicy;
}

const entry = (code: CloseCode, reason: string, metric: string | null, retry: RetryPolicy): CloseReason =>
  Object.freeze({ code, reason, metric, retry });

/** The catalogue: every reason the server closes a connection for. */
export const CloseReasons = Object.freeze({
  // A client only sees 1000 after its own goodbye; from anything else (a proxy) it reconnects.
  goodbye: entry(CloseCode.NORMAL, 'session ended', null, 'backoff'),
  helloExpected: entry(CloseCode.PROTOCOL_ERROR, 'first message must be hello', 'hello_expected', 'backoff'),
  duplicateHello: entry(CloseCode.PROTOCOL_ERROR, 'hello sent twice', 'duplicate_hello', 'backoff'),
  unknownMessageType: entry(CloseCode.PROTOCOL_ERROR, 'unknown message type', 'unknown_message_type', 'backoff'),
  sequenceGap: entry(CloseCode.PROTOCOL_ERROR, 'sequence gap: resume to learn the last applied seq', 'sequence_gap', 'backoff'),
  textFrame: entry(CloseCode.UNSUPPORTED_DATA, 'binary msgpack frames only', 'text_frame', 'backoff'),
  notMsgpack: entry(CloseCode.INVALID_PAYLOAD, 'frame is not valid msgpack within limits', 'not_msgpack', 'backoff'),
  badShape: entry(CloseCode.INVALID_PAYLOAD, 'message has the wrong shape', 'bad_shape', 'backoff'),
  frameTooBig: entry(CloseCode.TOO_BIG, 'frame above maxFrameBytes', 'frame_too_big', 'backoff'),
  tooManySamples: entry(CloseCode.TOO_BIG, 'frame above maxSamplesPerFrame', 'too_many_samples', 'backoff'),
  internalError: entry(CloseCode.INTERNAL_ERROR, 'internal error', 'internal_error', 'backoff'),
  frameRateLimit: entry(CloseCode.POLICY_VIOLATION, 'frame rate above the limit', 'frame_rate_limit', 'backoff'),
  tooManyFromAddress: entry(CloseCode.POLICY_VIOLATION, 'too many connections from this address', 'too_many_connections_per_ip', 'backoff'),
  serverFull: entry(CloseCode.TRY_AGAIN_LATER, 'server full; try again later', 'too_many_connections', 'backoff'),
  sessionTableFull: entry(CloseCode.TRY_AGAIN_LATER, 'session table full; try again later', 'too_many_sessions', 'backoff'),
  serverRestart: entry(CloseCode.SERVICE_RESTART, 'server restarting; reconnect and resume', null, 'backoff'),
  unsupportedVersion: entry(CloseCode.UNSUPPORTED_VERSION, 'unsupported protocol version; this server speaks promstream.v1', 'unsupported_version', 'never'),
  sessionNotResumable: entry(CloseCode.SESSION_NOT_RESUMABLE, 'session unknown, expired or token mismatch; start a new session', 'session_not_resumable', 'new-session'),
  sessionReplaced: entry(CloseCode.SESSION_REPLACED, 'session resumed on another connection', null, 'never'),
  sessionLabelsRejected: entry(CloseCode.SESSION_LABELS_REJECTED, 'session labels missing or not allowed', 'session_labels', 'never'),
  handshakeTimeout: entry(CloseCode.HANDSHAKE_TIMEOUT, 'no hello within the handshake timeout', 'handshake_timeout', 'backoff'),
  idleTimeout: entry(CloseCode.IDLE_TIMEOUT, 'no message or pong within the idle timeout', 'idle_timeout', 'backoff'),
  catalogChanged: entry(CloseCode.CATALOG_CHANGED, 'catalogue version changed; reconnect for the new one', 'catalog_changed', 'backoff'),
});
export type CloseReasonName = keyof typeof CloseReasons;

const byCode = new Map<number, RetryPolicy>();
for (const r of Object.values(CloseReasons)) if (!byCode.has(r.code)) byCode.set(r.code, r.retry);

/** What a client does after a close with this code; codes outside the catalogue (1006, proxies' codes) back off. */
export function retryPolicyFor(code: number): RetryPolicy {
  if (code === CloseCode.GOING_AWAY || code === CloseCode.TRY_AGAIN_LATER || code === CloseCode.POLICY_VIOLATION) return 'backoff';
  return byCode.get(code) ?? 'backoff';
}
