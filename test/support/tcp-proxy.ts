import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that an end-to-end test puts between a client and the server to break the
 * network on purpose: cut every connection at once (a blip), freeze it (a peer that went silent
 * without closing: laptop lid shut, NAT entry dropped), or make it slow (a one-way delay, as on a
 * mobile or intercontinental link).
 */
export interface TcpProxyOptions {
  /**
   * Milliseconds every byte and every FIN spends in the proxy in each direction (a round trip costs
   * twice this). 0, the default, forwards at once. TCP connects are not delayed: the proxy accepts and
   * dials upstream at once, so a WebSocket handshake costs two round trips (upgrade, then hello/welcome).
   */
  readonly delayMs?: number;
  /**
   * Bytes a direction may hold in its delay line before the proxy stops reading that side (default
   * 64 KiB); reading resumes once it has delivered below this. The line holds at most this plus one
   * read chunk: memory stays bounded however fast a side writes.
   */
  readonly maxDelayedBytes?: number;
}

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Client↔upstream pairs of which at least one socket is still open. */
  readonly connections: number;
  /** Bytes held in delay lines now, over every pair and direction. */
  readonly delayedBytes: number;
  /** The most bytes one direction of one pair ever held in its delay line (0 without a delay). */
  readonly peakDelayedBytes: number;
  /** Destroys both sockets of every pair at once, without a close handshake; new connections are still accepted. */
  cutAll(): void;
  /**
   * Stops forwarding in both directions and stops reading, keeping every socket open. Since nothing is
   * read, neither side's FIN or RST is noticed either: each peer sees a half-open connection. New clients
   * are accepted (the kernel completes their TCP handshake anyway) but get no upstream until unfreeze,
   * so the server sees nothing of them, as behind a dead link. Bytes already in a delay line stay there.
   */
  freeze(): void;
  /** Resumes forwarding, including bytes and closes that arrived while frozen (and what a delay line held). */
  unfreeze(): void;
  /** Destroys every pair and stops listening; resolves once the listener is closed. */
  close(): Promise<void>;
}

/** One direction of a pair: what was read from `from`, waiting out the delay before it is written to `to`. */
interface Lane {
  readonly from: net.Socket;
  readonly to: net.Socket;
  /** Chunks in arrival order, each with the time it is due; `null` is the sender's FIN. */
  readonly line: { dueAt: number; chunk: Buffer | null }[];
  /** Bytes in `line`. */
  bytes: number;
  timer: NodeJS.Timeout | undefined;
  /** Runs once `line` is empty: set when `from` has closed, to close `to` after what it still carries. */
  afterDrained: (() => void) | undefined;
}

interface Pair {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  clientClosed: boolean;
  upstreamClosed: boolean;
  /** client→upstream and upstream→client, once the upstream is dialled. */
  lanes: Lane[];
}

export async function startTcpProxy(target: { host: string; port: number }, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const delayMs = options.delayMs ?? 0;
  const maxDelayedBytes = options.maxDelayedBytes ?? 64 * 1024;
  if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new RangeError(`tcp proxy: delayMs must be finite and >= 0 (got ${delayMs})`);
  if (!(Number.isSafeInteger(maxDelayedBytes) && maxDelayedBytes > 0)) throw new RangeError(`tcp proxy: maxDelayedBytes must be a positive integer (got ${maxDelayedBytes})`);
  const pairs = new Set<Pair>();
  let frozen = false;
  let closed = false;
  let peakDelayedBytes = 0;

  const clearLanes = (pair: Pair): void => {
    for (const lane of pair.lanes) {
      clearTimeout(lane.timer);
      lane.timer = lane.afterDrained = undefined;
      lane.line.length = 0;
      lane.bytes = 0;
    }
  };

  const forget = (pair: Pair): void => {
    if (pair.clientClosed && (pair.upstream === undefined || pair.upstreamClosed)) {
      clearLanes(pair);
      pairs.delete(pair);
    }
  };

  /** Reads `from` again unless frozen, the delay line is full, or `to` has not drained. */
  const resumeIfRoom = (lane: Lane): void => {
    if (!frozen && lane.bytes < maxDelayedBytes && !lane.to.writableNeedDrain) lane.from.resume();
  };

  const schedule = (lane: Lane): void => {
    const head = lane.line[0];
    if (lane.timer !== undefined || frozen || head === undefined) return;
    lane.timer = setTimeout(() => deliver(lane), Math.max(0, head.dueAt - performance.now()));
  };

  /** Writes every chunk whose delay is over, in order; runs `afterDrained` once the line is empty. */
  const deliver = (lane: Lane): void => {
    lane.timer = undefined;
    if (frozen) return; // unfreeze schedules it again
    const now = performance.now();
    // Bounded: each round takes one chunk out of the line, which only the 'data' handler refills.
    for (let head = lane.line[0]; head !== undefined && head.dueAt <= now; head = lane.line[0]) {
      lane.line.shift();
      if (head.chunk === null) {
        lane.to.end();
      } else {
        lane.bytes -= head.chunk.length;
        if (!lane.to.write(head.chunk)) lane.from.pause();
      }
    }
    if (lane.line.length > 0) {
      schedule(lane);
    } else if (lane.afterDrained !== undefined) {
      const then = lane.afterDrained;
      lane.afterDrained = undefined;
      then();
    }
    resumeIfRoom(lane);
  };

  /** Runs `then` once `lane` has delivered everything it holds (at once when it holds nothing). */
  const whenDrained = (lane: Lane | undefined, then: () => void): void => {
    if (lane === undefined || lane.line.length === 0) then();
    else lane.afterDrained = then;
  };

  // Manual forwarding rather than pipe(): pipe() resumes the source on 'drain', which would undo a freeze.
  const forward = (from: net.Socket, to: net.Socket): Lane => {
    const lane: Lane = { from, to, line: [], bytes: 0, timer: undefined, afterDrained: undefined };
    from.on('data', (chunk: Buffer) => {
      if (frozen) {
        // pause() stops 'data' at once, so this only guards against a chunk already being emitted.
        from.pause();
        from.unshift(chunk);
        return;
      }
      if (delayMs === 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      lane.line.push({ dueAt: performance.now() + delayMs, chunk });
      lane.bytes += chunk.length;
      peakDelayedBytes = Math.max(peakDelayedBytes, lane.bytes);
      if (lane.bytes >= maxDelayedBytes) from.pause();
      schedule(lane);
    });
    to.on('drain', () => resumeIfRoom(lane));
    // Both sockets allow half-open, so a FIN is passed on as a FIN and the other direction keeps flowing
    // (without it, Node answers a FIN with its own FIN at once and drops the peer's late reply). With a
    // delay the FIN waits in the line behind the bytes sent before it.
    from.on('end', () => {
      if (delayMs === 0) {
        to.end();
        return;
      }
      lane.line.push({ dueAt: performance.now() + delayMs, chunk: null });
      schedule(lane);
    });
    return lane;
  };

  const connectUpstream = (pair: Pair): void => {
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    pair.upstream = upstream;
    // ECONNRESET, ECONNREFUSED, EPIPE are how a network fails; 'close' below does the teardown.
    upstream.on('error', () => {});
    const toUpstream = forward(pair.client, upstream);
    const toClient = forward(upstream, pair.client);
    pair.lanes = [toUpstream, toClient];
    upstream.on('close', () => {
      pair.upstreamClosed = true;
      // What the upstream sent before it closed is still on its way to the client.
      whenDrained(toClient, () => {
        release(pair.client);
        forget(pair);
      });
    });
    if (frozen) upstream.pause();
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    if (closed) {
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined, clientClosed: false, upstreamClosed: false, lanes: [] };
    pairs.add(pair);
    client.on('close', () => {
      pair.clientClosed = true;
      whenDrained(pair.lanes[0], () => {
        if (pair.upstream) release(pair.upstream);
        forget(pair);
      });
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
      clearLanes(pair);
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
    get delayedBytes() {
      let held = 0;
      for (const pair of pairs) for (const lane of pair.lanes) held += lane.bytes;
      return held;
    },
    get peakDelayedBytes() {
      return peakDelayedBytes;
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
          else pair.client.resume();
        }
        // Bytes held in a delay line whose time ran out while frozen go now, then reading resumes.
        for (const lane of pair.lanes) {
          schedule(lane);
          resumeIfRoom(lane);
        }
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
