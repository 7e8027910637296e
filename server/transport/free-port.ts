import { createServer, type AddressInfo } from 'node:net';
import { ErrorCode, PromstreamError } from '../errors.js';

/** A port the kernel considers free on host right now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Checks that `port` on `host` is nobody's (0: picks a free one) and returns it, before threads share it
 * with SO_REUSEPORT. Their sockets alone would join a group another process already listens in, so a
 * second promstream started on the same port would silently split its traffic (and its sessions) with the
 * first. A plain bind conflicts with any socket listening there, shared or not: that is the check.
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
