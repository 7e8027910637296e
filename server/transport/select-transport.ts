/**
 * Picks the library that carries the bytes (`--transport`). Only this file and the two adapters know
 * that there are two.
 */
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { ErrorCode, PromstreamError } from '../errors.js';
import type { StartTransport, TransportChoice, TransportName } from './types.js';
import { startWsTransport } from './ws-transport.js';
import { loadUws, startUwsTransport, type UwsLoadResult } from './uws-transport.js';
import { formatUwsFailures, uwsBinaryName, type UwsCandidateFailure } from './uws-loader.js';

/** The library a transport runs on, as the start-up log names it. */
export interface TransportLibrary {
  readonly package: string;
  readonly version: string;
  /** uWS only: the native binary that was loaded. */
  readonly binary?: string;
  /** uWS only: builds tried first that did not load here, each with why (`label: reason; …`). */
  readonly passedOver?: string;
}

export interface SelectedTransport {
  readonly name: TransportName;
  readonly start: StartTransport;
  readonly library: TransportLibrary;
}

/**
 * What to do when no uWS build loads, for the one log line (and the --transport uws error). The
 * builds promstream installs cover Node 20 on any glibc (@trufflesuite 20.30) and Node 20/22/24/25 on
 * glibc >= 2.38 (@btc-vision 20.57); anything else needs a build of the user's own.
 */
export const UWS_HINT =
  'for the native transport run Node 20, or Node 20/22/24/25 on glibc >= 2.38 (Debian 13, Ubuntu 24.04, the promstream image), ' +
  'or install a uWebSockets.js build for this system in your project (npm install uNetworking/uWebSockets.js#v20.57.0)';

/** 'uws' fails when no uWebSockets.js build loads; 'auto' then falls back to ws and says why, in one line. */
export async function selectTransport(choice: TransportChoice, log: Logger, load: () => Promise<UwsLoadResult> = loadUws): Promise<SelectedTransport> {
  if (choice === 'ws') return wsSelected();
  const loaded = await load();
  if (loaded.uws !== null) {
    const { packageName, version, binaryPath } = loaded.build;
    const passedOver = loaded.passedOver.length === 0 ? {} : { passedOver: formatUwsFailures(loaded.passedOver) };
    return { name: 'uws', start: startUwsTransport, library: { package: packageName, version, binary: binaryPath, ...passedOver } };
  }
  const why = unavailableText(loaded.failures);
  if (choice === 'uws') {
    throw new PromstreamError(ErrorCode.TRANSPORT_UNAVAILABLE, `--transport uws: no uWebSockets.js build loads here (${why}); ${UWS_HINT}; or use --transport ws or auto`);
  }
  // Structured fields for log search, the whole story in msg: no error object, so no stack trace.
  log.warn({ uws: loaded.failures, binary: uwsBinaryName() }, `uWebSockets.js does not load here, using the ws transport: ${why}. To fix: ${UWS_HINT}; --transport ws silences this`);
  return wsSelected();
}

function unavailableText(failures: readonly UwsCandidateFailure[]): string {
  return `Node.js ${process.version} needs ${uwsBinaryName()}; ${formatUwsFailures(failures)}`;
}

function wsSelected(): SelectedTransport {
  return { name: 'ws', start: startWsTransport, library: { package: 'ws', version: wsVersion() } };
}

function wsVersion(): string {
  const manifest: unknown = createRequire(import.meta.url)('ws/package.json');
  const version = typeof manifest === 'object' && manifest !== null ? (manifest as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : '(unknown)';
}

/** The start function of a transport already selected (a worker thread starts what the main thread chose). */
export async function transportStarter(name: TransportName): Promise<StartTransport> {
  if (name === 'ws') return startWsTransport;
  const loaded = await loadUws();
  if (loaded.uws === null) throw new PromstreamError(ErrorCode.TRANSPORT_UNAVAILABLE, `uWebSockets.js does not load in a worker thread: ${loaded.error.message}`);
  return startUwsTransport;
}
