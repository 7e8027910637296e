export type Labels = Readonly<Record<string, string>>;

export type ClientStatus =
  | { readonly type: 'connecting'; readonly attempt: number }
  | { readonly type: 'connected'; readonly sessionId: string; readonly resumed: boolean; readonly epoch: string }
  | { readonly type: 'disconnected'; readonly code: number; readonly reason: string; readonly retryInMs: number | null }
  /** The server dropped this many samples of an acknowledged frame: the session was over its sample rate. */
  | { readonly type: 'rate-limited'; readonly samples: number }
  | { readonly type: 'error'; readonly message: string };

export interface ClientOptions {
  /** ws:// or wss:// URL of the aggregator's /ws endpoint. */
  readonly url: string;
  /** Session labels (the whitelist's sessionLabels); appear on connected_clients only. */
  readonly labels?: Labels;
  /** Milliseconds between flushes; default: what the server says in its welcome. */
  readonly flushInterval?: number;
  /** Milliseconds flush() and close() wait for acknowledgement before rejecting; default 30000. */
  readonly flushTimeout?: number;
  /** Status callback: connecting, connected (with resume), disconnected (with code, reason), error. */
  readonly onStatus?: (status: ClientStatus) => void;
  /** Reconnect backoff in milliseconds; default base 250, cap 30000 (full jitter). */
  readonly backoff?: { readonly baseMs?: number; readonly capMs?: number };
}

export interface PromstreamClient {
  increment(name: string, labels?: Labels, value?: number): void;
  observe(name: string, labels: Labels, value: number): void;
  set(name: string, labels: Labels, value: number): void;
  /** Resolves once the server acknowledged everything recorded before the call. */
  flush(): Promise<void>;
  /** Flushes (bounded by flushTimeout), ends the session cleanly, resolves once closed. */
  close(): Promise<void>;
  /** The session id, once welcomed. */
  readonly sessionId: string | null;
}

/** The few members of a WebSocket the core uses: the browser's WebSocket and ws both have them. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string, protocols: string[]) => SocketLike;
