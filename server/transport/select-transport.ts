/**
 * Picks the library that carries the bytes (`--transport`). Only this file and the two adapters know
 * that there are two.
 */
import type { Logger } from 'pino';
import { ErrorCode, PromstreamError } from '../errors.js';
import type { StartTransport, TransportChoice, TransportName } from './types.js';
import { startWsTransport } from './ws-transport.js';
import { loadUws, startUwsTransport } from './uws-transport.js';

export interface SelectedTransport {
  readonly name: TransportName;
  readonly start: StartTransport;
}

/** 'uws' fails when uWebSockets.js does not load; 'auto' then falls back to ws and says why. */
export async function selectTransport(choice: TransportChoice, log: Logger): Promise<SelectedTransport> {
  if (choice === 'ws') return { name: 'ws', start: startWsTransport };
  const loaded = await loadUws();
  if (loaded.uws !== null) return { name: 'uws', start: startUwsTransport };
  if (choice === 'uws') {
    throw new PromstreamError(ErrorCode.TRANSPORT_UNAVAILABLE, `--transport uws: uWebSockets.js does not load here (${loaded.error.message}); use --transport ws or auto`, {
      cause: loaded.error,
    });
  }
  log.warn({ err: loaded.error }, `uWebSockets.js does not load (${loaded.error.message}); using the ws transport`);
  return { name: 'ws', start: startWsTransport };
}

/** The start function of a transport already selected (a worker thread starts what the main thread chose). */
export async function transportStarter(name: TransportName): Promise<StartTransport> {
  if (name === 'ws') return startWsTransport;
  const loaded = await loadUws();
  if (loaded.uws === null) throw new PromstreamError(ErrorCode.TRANSPORT_UNAVAILABLE, `uWebSockets.js does not load in a worker thread: ${loaded.error.message}`);
  return startUwsTransport;
}
