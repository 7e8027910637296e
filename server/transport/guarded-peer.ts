import type { Logger } from 'pino';
import { CloseReasons, type ServerCloseReason } from '../../protocol/index.js';
import type { ConnectionHandlers, Peer, UpgradeRequest } from './types.js';

/** What every peer of one transport shares: held once per transport, one reference per peer. */
export interface PeerShared<S> {
  readonly handlers: ConnectionHandlers<S>;
  readonly log: Logger;
}

/** onOpen has not returned (yet, or it threw): the state is not there. */
const NOT_OPENED: unique symbol = Symbol('not opened');
/** The server closed it (or is about to): deliver nothing more. */
const CLOSING = 1;
/** The socket is gone and onClose is queued. */
const GONE = 2;

/**
 * The part of a Peer both transports share: it calls the handlers and keeps the promises of
 * types.ts. onOpen's state is kept as returned (S itself may be undefined: NOT_OPENED marks its
 * absence); once the server closed the connection nothing more is delivered; onClose runs exactly
 * once, from a fresh microtask (never inside another handler or a Peer method: a close from inside
 * onOpen lands before onOpen has returned), and only once the socket is gone. A handler that throws
 * costs its own connection (1011), never the process. A connection onOpen never saw (it threw) gets
 * no onClose.
 *
 * One of these lives as long as its socket, so it holds few fields: what the transport's peers share
 * is one object (`shared`), the two flags are one number.
 */
export abstract class GuardedPeer<S, X extends PeerShared<S> = PeerShared<S>> implements Peer {
  #state: S | typeof NOT_OPENED = NOT_OPENED;
  /** CLOSING | GONE */
  #flags = 0;
  /** Set when the transport itself closed the connection (send queue full, a handler that threw). */
  #byTransport: ServerCloseReason | null = null;

  constructor(protected readonly shared: X) {}

  /** The server has closed or dropped this connection, or the socket is gone: nothing may be delivered. */
  protected get closing(): boolean {
    return this.#flags !== 0;
  }

  protected get isGone(): boolean {
    return (this.#flags & GONE) !== 0;
  }

  /** Runs onOpen; false when it threw (the caller drops the socket; with no state there is no onClose). */
  protected openWith(request: UpgradeRequest, protocol: string | null): boolean {
    try {
      this.#state = this.shared.handlers.onOpen(this, request, protocol);
      return true;
    } catch (err) {
      this.shared.log.error({ err }, 'onOpen threw; dropping the connection');
      this.#flags |= CLOSING;
      return false;
    }
  }

  deliver(data: Uint8Array, isBinary: boolean): void {
    const state = this.#state;
    if (this.#flags !== 0 || state === NOT_OPENED) return;
    // Once per frame: a try of its own, no closure.
    try {
      this.shared.handlers.onMessage(state, data, isBinary);
    } catch (err) {
      this.failed(err);
    }
  }

  pingReceived(): void {
    const state = this.#state;
    if (this.#flags !== 0 || state === NOT_OPENED) return;
    try {
      this.shared.handlers.onPing(state);
    } catch (err) {
      this.failed(err);
    }
  }

  pongReceived(): void {
    const state = this.#state;
    if (this.#flags !== 0 || state === NOT_OPENED) return;
    try {
      this.shared.handlers.onPong(state);
    } catch (err) {
      this.failed(err);
    }
  }

  /** The socket is gone, whoever closed it: queue onClose (once). */
  protected reportGone(code: number, reason: string): void {
    if ((this.#flags & GONE) !== 0) return;
    this.#flags = CLOSING | GONE;
    const byTransport = this.#byTransport;
    queueMicrotask(() => {
      const state = this.#state;
      if (state === NOT_OPENED) return;
      try {
        this.shared.handlers.onClose(state, code, reason, byTransport);
      } catch (err) {
        this.shared.log.error({ err }, 'onClose threw');
      }
    });
  }

  /** From here on nothing is delivered; `byTransport` when the transport (not the handler) closes it. */
  protected markClosing(byTransport: ServerCloseReason | null = null): boolean {
    if (this.#flags !== 0) return false;
    this.#flags = CLOSING;
    this.#byTransport = byTransport;
    return true;
  }

  private failed(err: unknown): void {
    this.shared.log.error({ err }, 'connection handler threw; closing with 1011');
    this.closeByTransport(CloseReasons.internalError);
  }

  /** The transport's own close, with a reason of the catalogue. */
  protected abstract closeByTransport(reason: ServerCloseReason): void;

  abstract send(bytes: Uint8Array): void;
  abstract close(code: number, reason: string): void;
  abstract terminate(): void;
  abstract ping(): void;
}
