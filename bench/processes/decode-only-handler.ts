import { 
  SUPPORTED_SUBPROTOCOLS,
  decodeClientFrame,
} from '../../protocol/index.js';
import type { ConnectionHandlers, Peer, UpgradeDecision, UpgradeRequest } from '../../server/transport/types.js';

interface DecodeOnlyConnection {
  readonly peer: Peer;
  welcomed: boolean;
}

/**
 * The ingest ceiling: a handler behind the very same transport that only decodes each frame (structural
 * guard + msgpack, as the server does) and counts it. The first frame (the hello) is answered with a
 * prebuilt welcome so that the load generator runs exactly as it does against the real server.
 */
export class DecodeOnlyHandler implements ConnectionHandlers<DecodeOnlyConnection> {
  frames = 0;
  samples = 0;

  constructor(private readonly welcome: Uint8Array) {}

  checkUpgrade(req: UpgradeRequest): UpgradeDecision {
    return { accept: true, protocol: req.protocols.find((p) => SUPPORTED_SUBPROTOCOLS.includes(p)) ?? null };
  }

  onOpen(peer: Peer): DecodeOnlyConnection {
    return { peer, welcomed: false };
  }

  onMessage(conn: DecodeOnlyConnection, data: Uint8Array): void {
    const value = decodeClientFrame(data);
    this.frames++;
    if (!conn.welcomed) {
      conn.welcomed = true;
      conn.peer.send(this.welcome);
      return;
    }
    const samples: unknown = Array.isArray(value) ? value[3] : undefined;
    if (Array.isArray(samples)) this.samples += samples.length;
  }

  onPong(): void {}

  onPing(): void {}

  onClose(): void {}
}
