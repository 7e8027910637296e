/**
 * A bare WebSocket client on a net.Socket for the load generator: the upgrade handshake, masked binary
 * frames built once and written as they are, and a reader of the server's frames that allocates
 * nothing per frame. A full client (ws) spends more CPU per frame than the server it is measuring.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { SUBPROTOCOL } from '../../protocol/index.js';

/**
 * A client frame around `payload`: FIN + binary, masked with the all-zero key, which RFC 6455 allows
 * and which leaves the payload bytes as they are, so frames can be prebuilt and patched in place.
 */
export function maskedFrame(payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.alloc(head + 4 + n);
  frame[0] = 0x82;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  frame.set(payload, head + 4);
  return frame;
}

/** Offset of the payload inside a frame made by maskedFrame. */
export const payloadOffset = (frame: Uint8Array): number => ((frame[1]! & 0x7f) < 126 ? 6 : (frame[1]! & 0x7f) === 126 ? 8 : 14);

export type FrameHandler = (opcode: number, bytes: Buffer, start: number, end: number) => void;

/** Splits the server's byte stream into frames; a frame may span chunks. */
export class ServerFrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let pos = 0;
    const end = buf.length;
    while (end - pos >= 2) {
      const opcode = buf[pos]! & 0x0f;
      let len = buf[pos + 1]! & 0x7f;
      let head = 2;
      if (len === 126) {
        if (end - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        head = 4;
      } else if (len === 127) {
        if (end - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        head = 10;
      }
      if (end - pos < head + len) break;
      this.onFrame(opcode, buf, pos + head, pos + head + len);
      pos += head + len;
    }
    if (pos < end) this.pending = buf.subarray(pos);
  }
}

/** Reads a msgpack unsigned integer at `pos` (the forms the server's acks use). */
export function readUint(b: Buffer, pos: number): number {
  const t = b[pos]!;
  if (t <= 0x7f) return t;
  if (t === 0xcc) return b[pos + 1]!;
  if (t === 0xcd) return b.readUInt16BE(pos + 1);
  if (t === 0xce) return b.readUInt32BE(pos + 1);
  if (t === 0xcf) return Number(b.readBigUInt64BE(pos + 1));
  return NaN;
}

export interface RawConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly localAddress?: string | undefined;
  readonly timeoutMs?: number;
}

/** Opens a TCP connection and completes the WebSocket upgrade; resolves with the socket and any bytes after the 101. */
export function rawUpgrade(o: RawConnectOptions): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: o.host, port: o.port, ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`upgrade to ${o.host}:${o.port} timed out`)), o.timeoutMs ?? 15_000);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.write(
        `GET ${o.path} HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${SUBPROTOCOL}\r\n\r\n`,
      );
    });
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.1 101/.test(status)) return fail(new Error(`upgrade refused: ${status}`));
      clearTimeout(timer);
      socket.off('error', fail);
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}
