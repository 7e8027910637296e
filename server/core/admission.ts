import { CloseReasons, SUPPORTED_SUBPROTOCOLS, WS_PATH, type ServerCloseReason } from '../../protocol/index.js';
import { originAllowed, type OriginRules } from '../http/origin-check.js';
import type { UpgradeDecision, UpgradeRequest } from '../transport/types.js';
import { LocalConnectionCounts, type ConnectionCounts } from './connection-counts.js';

export interface AdmissionLimits {
  readonly maxConnections: number;
  /** 0: off. */
  readonly maxConnectionsPerIp: number;
  readonly trustProxy: boolean;
  readonly originRules: OriginRules;
}

/**
 * Who may connect: the upgrade check (path, shutdown, origin, subprotocol) and the connection limits.
 * A connection counts from the moment its socket is open until it is gone (admit … release, always in
 * pairs): a socket the server is still closing holds a descriptor and is read until it goes, so it
 * counts against --max-connections and the per-address limit like any other.
 */
export class Admission {
  private draining = false;

  constructor(
    private readonly limits: AdmissionLimits,
    private readonly onOriginRefused: () => void,
    /** The host's counts (shared memory with workers); this loop's own otherwise. */
    private readonly counts: ConnectionCounts = new LocalConnectionCounts(),
  ) {}

  /** Sockets open right now (on the host), those still closing included. */
  get openSockets(): number {
    return this.counts.total;
  }

  /** Open sockets from one address (0 when the per-address limit is off). */
  socketsFrom(address: string): number {
    return this.limits.maxConnectionsPerIp > 0 ? this.counts.fromAddress(address) : 0;
  }

  /** From now on upgrades are refused (503): the server is shutting down. */
  stopAdmitting(): void {
    this.draining = true;
  }

  checkUpgrade(req: UpgradeRequest): UpgradeDecision {
    if (req.path !== WS_PATH) return { accept: false, status: 404, message: `WebSocket endpoint is ${WS_PATH}` };
    if (this.draining) return { accept: false, status: 503, message: 'server is shutting down' };
    if (!originAllowed(req.origin, this.limits.originRules)) {
      this.onOriginRefused();
      return { accept: false, status: 403, message: 'origin not allowed' };
    }
    // Browsers fail the handshake (and show only 1006) when the server picks none of the offered
    // subprotocols, so an unknown version is accepted as offered and then closed with 4000 and a reason.
    // The newest version both speak (SUPPORTED_SUBPROTOCOLS is newest first).
    const supported = SUPPORTED_SUBPROTOCOLS.find((p) => req.protocols.includes(p));
    return { accept: true, protocol: supported ?? req.protocols[0] ?? null };
  }

  /** The client's address: the last X-Forwarded-For entry (what our proxy saw) when the proxy is trusted. */
  addressOf(req: UpgradeRequest): string {
    if (this.limits.trustProxy && req.forwardedFor !== undefined) {
      const last = req.forwardedFor.split(',').at(-1)?.trim();
      if (last !== undefined && last !== '') return last;
    }
    return req.remoteAddress;
  }

  /**
   * Counts a socket that just opened, then says whether it must be refused (closed with the reason,
   * after the upgrade, so that a browser learns why: a refused upgrade is only 1006). Either way the
   * socket is counted until release().
   */
  admit(address: string): ServerCloseReason | null {
    const { total, fromAddress } = this.counts.add(address, this.limits.maxConnectionsPerIp > 0);
    if (total > this.limits.maxConnections) return CloseReasons.serverFull;
    if (this.limits.maxConnectionsPerIp > 0 && fromAddress > this.limits.maxConnectionsPerIp) return CloseReasons.tooManyFromAddress;
    return null;
  }

  /** The socket admit() counted is gone. */
  release(address: string): void {
    this.counts.remove(address, this.limits.maxConnectionsPerIp > 0);
  }
}
