/**
 * The server's errors, each with a stable `code` (undici's way): callers, the CLI included, tell them
 * apart by class or code, never by message text.
 */
export const ErrorCode = {
  /** startServer() options out of range or of the wrong type; `problems` lists each. */
  OPTIONS_INVALID: 'PROMSTREAM_OPTIONS_INVALID',
  /** The whitelist files have problems; `problems` lists each with file, metric and field. */
  CONFIG_INVALID: 'PROMSTREAM_CONFIG_INVALID',
  /** A --tls-cert/--tls-key file is missing, unreadable, not PEM or the pair does not match. */
  TLS_FILE: 'PROMSTREAM_TLS_FILE',
  /** --transport uws where uWebSockets.js does not load. */
  TRANSPORT_UNAVAILABLE: 'PROMSTREAM_TRANSPORT_UNAVAILABLE',
  /** --workers above 1 where the transport cannot share its port between threads (ws before Node 22.12), or with --demo. */
  WORKERS_UNAVAILABLE: 'PROMSTREAM_WORKERS_UNAVAILABLE',
  /** A port could not be bound (in use, privileged). */
  LISTEN_FAILED: 'PROMSTREAM_LISTEN_FAILED',
  /** reload() while another reload is still reconnecting its clients. */
  RELOAD_IN_PROGRESS: 'PROMSTREAM_RELOAD_IN_PROGRESS',
  /** reload() after drain() or close() began. */
  SERVER_STOPPING: 'PROMSTREAM_SERVER_STOPPING',
  /** reload() of a whitelist with other sessionLabels: connected_clients would change its labels. */
  SESSION_LABELS_CHANGED: 'PROMSTREAM_SESSION_LABELS_CHANGED',
  /** dist/browser is missing or not ours: the browser script cannot be served. */
  BROWSER_SCRIPT_MISSING: 'PROMSTREAM_BROWSER_SCRIPT_MISSING',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class PromstreamError extends Error {
  override readonly name: string = 'PromstreamError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One bad option: its JavaScript name (the CLI says it as its flag) and what is wrong. */
export interface OptionProblem {
  readonly option: string;
  readonly message: string;
}

export class OptionsError extends PromstreamError {
  override readonly name = 'OptionsError';
  constructor(readonly problems: readonly OptionProblem[]) {
    super(ErrorCode.OPTIONS_INVALID, `invalid server options:\n${problems.map((p) => `  ${p.option}: ${p.message}`).join('\n')}`);
  }
}
