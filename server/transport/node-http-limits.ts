/**
 * What one node:http connection may queue: the public side of the ws transport and the metrics port
 * (on both transports) use it.
 *
 * Node parses every request of a read (up to 64 KiB of pipelined requests) at once and runs the
 * handler for each, whether or not the peer reads the answers; it stops reading only once the
 * answers queued pass the socket's high-water mark, and /metrics answers asynchronously, so until
 * its renders finish nothing is queued at all. A peer that pipelines thousands of requests and never
 * reads would hold thousands of answers (or renders) in memory. So requests are counted per socket
 * from their arrival until their response is done (handed to the kernel) or aborted, and a socket
 * that has more than MAX_REQUESTS_IN_FLIGHT of them is destroyed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Requests one HTTP connection may have in flight. Not an option: no client we serve pipelines
 * (browsers never do, nor Prometheus, curl, nginx or the Kubernetes probes; each sends its next
 * request after the previous answer), so an honest connection has one request in flight; the margin
 * is for a rare pipelining proxy. Past it, the connection is an attack: 8 answers are what it may cost.
 */
export const MAX_REQUESTS_IN_FLIGHT = 8;

/**
 * Wraps a request listener: it runs only while the request's socket has at most `max` requests in
 * flight; the one past that destroys the socket (and every request parsed after it on that socket
 * is dropped unanswered).
 */
export function limitRequestsInFlight(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  log: Logger,
  max: number = MAX_REQUESTS_IN_FLIGHT,
): (req: IncomingMessage, res: ServerResponse) => void {
  const inFlight = new WeakMap<Socket, number>();
  return (req, res) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    const count = (inFlight.get(socket) ?? 0) + 1;
    if (count > max) {
      log.debug({ remoteAddress: socket.remoteAddress, inFlight: count - 1 }, 'too many pipelined HTTP requests in flight; destroying the connection');
      socket.destroy();
      return;
    }
    inFlight.set(socket, count);
    // 'close' follows 'finish' (the last byte handed to the kernel) or an abort, exactly once.
    res.once('close', () => inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1));
    listener(req, res);
  };
}
