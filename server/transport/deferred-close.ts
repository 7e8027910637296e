import type { Logger } from 'pino';
import type { ConnectionHandlers } from './types.js';

/**
 * Tells the handlers a connection closed, in a microtask, on both transports: the state is read there
 * because a close from inside onOpen lands before onOpen has returned it, and onClose must never run
 * inside another handler or a Peer method. A connection onOpen never saw (it threw) gets no onClose.
 */
export function deferOnClose<S>(handlers: ConnectionHandlers<S>, opened: () => { readonly state: S } | undefined, code: number, reason: string, log: Logger): void {
  queueMicrotask(() => {
    const o = opened();
    if (o === undefined) return;
    try {
      handlers.onClose(o.state, code, reason);
    } catch (err) {
      log.error({ err }, 'onClose threw');
    }
  });
}
