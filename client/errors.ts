/**
 * What the client's promises reject with and createClient() throws: errors with a stable `code`, so
 * that callers tell them apart by code, never by message text.
 */
export const ClientErrorCode = {
  /** flush() or close(): not acknowledged within flushTimeout. */
  FLUSH_TIMEOUT: 'PROMSTREAM_FLUSH_TIMEOUT',
  /** The client was closed (close()) before the acknowledgement came. */
  CLIENT_CLOSED: 'PROMSTREAM_CLIENT_CLOSED',
  /** The server closed the connection for good (4000, 4002, 4003): the client stopped. */
  CLOSED_BY_SERVER: 'PROMSTREAM_CLOSED_BY_SERVER',
  /** createClient() was given options it cannot work with. */
  OPTIONS_INVALID: 'PROMSTREAM_CLIENT_OPTIONS_INVALID',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export class PromstreamClientError extends Error {
  override readonly name: string = 'PromstreamClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The server closed with a code whose retry policy is 'never': the client will not reconnect. */
export class ClosedByServerError extends PromstreamClientError {
  override readonly name = 'ClosedByServerError';
  constructor(
    readonly closeCode: number,
    readonly closeReason: string,
  ) {
    super(ClientErrorCode.CLOSED_BY_SERVER, `promstream connection closed for good: ${closeCode} ${closeReason}`);
  }
}
