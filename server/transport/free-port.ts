import { createServer, type AddressInfo } from 'node:net';
import { ErrorCode, PromstreamError } from '../errors.js';

/**
 * Checks that `port` on `host` is nobody's right now (0: the kernel picks a free one) and returns it.
 * Workers call it before their threads share the port with SO_REUSEPORT: those sockets alone would join
 * a group another process already listens in, so a second promstream on the same port would silently
 * split its traffic (and its sessions) with the first. A plain bind conflicts with any socket listening
 * there, shared or not: that is the check.
 */
export function claimPort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new PromstreamError(ErrorCode.LISTEN_FAILED, `${host}:${port} is in use (another promstream or another program listens there)`)
        : err);
    });
    probe.listen({ port, host, exclusive: true }, () => {
      const { port: bound } = probe.address() as AddressInfo;
      probe.close(() => resolve(bound));
    });
  });
}
