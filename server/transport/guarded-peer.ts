import type { Logger } from 'pino';
import { CloseReasons, type ServerCloseReason } from '../../protocol/index.js';
import type { ConnectionHandlers, Peer, UpgradeRequest } from './types.js';

/**
 * The part of a Peer both transports share: it calls the handlers and keeps the promises of
 * types.ts. onOpen's state is kept in a box (S itself may be undefined); once the server closed the
 * connection nothing more is delivered; onClose runs exactly once, from a fresh microtask (never inside
 * another handler or a Peer method: a close from inside onOpen lands before onOpen has returned), and
 * only once the socket is gone. A handler that throws costs its own connection (1011), never the
 * process. A connection onOpen never saw (it threw) gets no onClose.
 */
export abstract class GuardedPeer<S> implements Peer {
  #opened: { readonly state: S } | undefined;
  /** The server closed it (or is about to): deliver nothing more. */
  #closing = false;
  /** The socket is gone and onClose is queued. */
  #gone = false;
  /** Set when the transport itself closed the connection (send queue full, a handler that threw). */
  #byTransport: ServerCloseReason | null = null;

  constructor(
    protected readonly handlers: ConnectionHandlers<S>,
    protected readonly log: Logger,
  ) {}

  /** The server has closed or dropped this connection, or the socket is gone: nothing may be delivered. */
  protected get closing(): boolean {
    return this.#closing || this.#gone;
  }

  protected get isGone(): boolean {
    return this.#gone;
  }

  /** Runs onOpen; false when it threw (the caller drops the socket; with no state there is no onClose). */
  protected openWith(request: UpgradeRequest, protocol: string | null): boolean {
    try {
      this.#opened = { state: this.handlers.onOpen(this, request, protocol) };
      return true;
    } catch (err) {
      this.log.error({ err }, 'onOpen threw; dropping the connection');
      this.#closing = true;
      return false;
    }
  }

  deliver(data: Uint8Array, isBinary: boolean): void {
    const opened = this.#opened;
    if (this.#closing || this.#gone || opened === undefined) return;
    // Once per frame: a try of its own, no closure.
    try {
      this.handlers.onMessage(opened.state, data, isBinary);
    } catch (err) {
      this.failed(err);
    }
  }

  pingReceived(): void {
    const opened = this.#opened;
    if (this.#closing || this.#gone || opened === undefined) return;
    try {
      this.handlers.onPing(opened.state);
    } catch (err) {
      this.failed(err);
    }
  }

  pongReceived(): void {
    const opened = this.#opened;
    if (this.#closing || this.#gone || opened === undefined) return;
    try {
      this.handlers.onPong(opened.state);
    } catch (err) {
      this.failed(err);
    }
  }

  /** The socket is gone, whoever closed it: queue onClose (once). */
  protected reportGone(code: number, reason: string): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#closing = true;
    const byTransport = this.#byTransport;
    queueMicrotask(() => {
      const o = this.#opened;
      if (o === undefined) return;
      try {
        this.handlers.onClose(o.state, code, reason, byTransport);
      } catch (err) {
        this.log.error({ err }, 'onClose threw');
      }
    });
  }

  /** From here on nothing is delivered; `byTransport` when the transport (not the handler) closes it. */
  protected markClosing(byTransport: ServerCloseReason | null = null): boolean {
    if (this.#closing || this.#gone) return false;
    this.#closing = true;
    this.#byTransport = byTransport;
    return true;
  }

  private failed(err: unknown): void {
    this.log.error({ err }, 'connection handler threw; closing with 1011');
    this.closeByTransport(CloseReasons.internalError);
  }

  /** The transport's own close, with a reason of the catalogue. */
  protected abstract closeByTransport(reason: ServerCloseReason): void;

  abstract send(bytes: Uint8Array): void;
  abstract close(code: number, reason: string): void;
  abstract terminate(): void;
  abstract ping(): void;
}
