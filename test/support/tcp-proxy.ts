import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that an end-to-end test puts between a client and the server to break the
 * network on purpose: cut every connection at once (a blip) or freeze it (a peer that went silent
 * without closing: laptop lid shut, NAT entry dropped).
 */
export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Client↔upstream pairs of which at least one socket is still open. */
  readonly connections: number;
  /** Destroys both sockets of every pair at once, without a close handshake; new connections are still accepted. */
  cutAll(): void;
  /**
   * Stops forwarding in both directions and stops reading, keeping every socket open. Since nothing is
   * read, neither side's FIN or RST is noticed either: each peer sees a half-open connection. New clients
   * are accepted (the kernel completes their TCP handshake anyway) but get no upstream until unfreeze,
   * so the server sees nothing of them, as behind a dead link.
   */
  freeze(): void;
  /** Resumes forwarding, including bytes and closes that arrived while frozen. */
  unfreeze(): void;
  /** Destroys every pair and stops listening; resolves once the listener is closed. */
  close(): Promise<void>;
}

interface Pair {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  clientClosed: boolean;
  upstreamClosed: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let frozen = false;
  let closed = false;

  const forget = (pair: Pair): void => {
    if (pair.clientClosed && (pair.upstream === undefined || pair.upstreamClosed)) pairs.delete(pair);
  };

  // Manual forwarding rather than pipe(): pipe() resumes the source on 'drain', which would undo a freeze.
  const forward = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (frozen) {
        // pause() stops 'data' at once, so this only guards against a chunk already being emitted.
        from.pause();
        from.unshift(chunk);
        return;
      }
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!frozen) from.resume();
    });
    // Both sockets allow half-open, so a FIN is passed on as a FIN and the other direction keeps flowing
    // (without it, Node answers a FIN with its own FIN at once and drops the peer's late reply).
    from.on('end', () => to.end());
  };

  const connectUpstream = (pair: Pair): void => {
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    pair.upstream = upstream;
    // ECONNRESET, ECONNREFUSED, EPIPE are how a network fails; 'close' below does the teardown.
    upstream.on('error', () => {});
    upstream.on('close', () => {
      pair.upstreamClosed = true;
      release(pair.client);
      forget(pair);
    });
    forward(pair.client, upstream);
    forward(upstream, pair.client);
    if (frozen) upstream.pause();
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    if (closed) {
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined, clientClosed: false, upstreamClosed: false };
    pairs.add(pair);
    client.on('close', () => {
      pair.clientClosed = true;
      if (pair.upstream) release(pair.upstream);
      forget(pair);
    });
    if (frozen) {
      client.pause();
    } else {
      connectUpstream(pair);
    }
  });
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: listener has no TCP address');

  const destroyAll = (): void => {
    for (const pair of pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    // 'close' events arrive on a later tick; the pairs are gone now, so `connections` reads 0 at once.
    pairs.clear();
  };

  return {
    port: address.port,
    get connections() {
      return pairs.size;
    },
    cutAll: destroyAll,
    freeze() {
      frozen = true;
      for (const pair of pairs) {
        pair.client.pause();
        pair.upstream?.pause();
      }
    },
    unfreeze() {
      if (!frozen) return;
      frozen = false;
      for (const pair of pairs) {
        if (pair.upstream === undefined) {
          if (!pair.clientClosed) connectUpstream(pair);
        } else {
          pair.upstream.resume();
        }
        pair.client.resume();
      }
    },
    close() {
      closed = true;
      destroyAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The other socket of a pair has closed: flush what is already queued for this one, then close it.
 * Destroying it at once would drop bytes the closed side sent just before its FIN.
 */
function release(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  socket.end();
  socket.once('finish', () => socket.destroy());
}
