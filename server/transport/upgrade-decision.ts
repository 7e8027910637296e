import type { Logger } from 'pino';
import type { ConnectionHandlers, UpgradeDecision, UpgradeRequest } from './types.js';

/**
 * Asks the handlers about an upgrade, the same way on both transports: a handler that throws refuses
 * with 500 (the process carries on), and a subprotocol the client did not offer is not echoed, because
 * every compliant client fails a handshake that echoes one it did not ask for.
 */
export function decideUpgrade<S>(handlers: ConnectionHandlers<S>, request: UpgradeRequest, log: Logger): UpgradeDecision {
  let decision;
  try {
    decision = handlers.checkUpgrade(request);
  } catch (err) {
    log.error({ err }, 'checkUpgrade threw; refusing with 500');
    return { accept: false, status: 500, message: 'internal error' };
  }
  if (!decision.accept) return decision;
  if (decision.protocol !== null && !request.protocols.includes(decision.protocol)) {
    log.warn({ protocol: decision.protocol }, 'checkUpgrade chose a subprotocol the client did not offer; echoing none');
    return { accept: true, protocol: null };
  }
  return decision;
}
