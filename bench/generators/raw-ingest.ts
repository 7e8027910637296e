/**
 * The ingest load generator: a few raw WebSocket connections, each a session that streams prebuilt
 * 7-sample delta frames as fast as the server takes them (saturation), or one frame per connection
 * per tick (paced, to time acknowledgements while something else happens). Frames are built once from
 * the server's catalogue; per chunk only the sequence numbers are patched in, so the generator spends
 * a few nanoseconds per frame and stays far below the server's cost.
 */
import type { Socket } from 'node:net';
import {
  ServerMessageType, 
  decodeServerFrame,
  encodeDelta,
  encodeHello,
  parseServerMessage,
  type Welcome,
} from '../../protocol/index.js';
import { cpuSeconds } from '../processes/child-process.js';
import { maskedFrame, payloadOffset, rawUpgrade, readUint, ServerFrameReader } from './raw-websocket.js';
import { ExpectedTotals, planBatches, VARIANTS, wireSample, type PlannedSample } from './sample-plan.js';

/** Frames per write: 16 rounds of the variants (~60 KiB of 7-sample frames). */
const FRAMES_PER_CHUNK = VARIANTS * 16;
/** Sequence numbers are written as msgpack uint32 (0xce + 4 bytes) so they can be patched in place. */
const SEQ_PLACEHOLDER = 0xffff_ffff;
const RTT_SLOTS = 1 << 16;

export interface RawIngestOpen {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly connections: number;
  readonly localAddresses: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export interface RawIngestResult {
  readonly framesSent: number;
  readonly connections: number;
  /** Connections whose last ack equals their last sequence number (all of them when acks are awaited). */
  readonly fullyAcked: number;
  readonly generatorCpuSeconds: number;
  readonly elapsedMs: number;
  /** Closes the server sent, e.g. "1008 frame rate limit". */
  readonly closes: readonly string[];
  /** Paced mode: acknowledgement round trips in ms. */
  readonly ackRttMs: readonly number[];
  /** What the server must now expose for these connections (gauges: one holder per connection). */
  readonly expected: unknown;
}

class Connection {
  nextSeq = 1;
  lastAck = 0;
  welcome: Welcome | null = null;
  closedWith: string | null = null;
  pendingWrites = 0;
  readonly sentAtMs = new Float64Array(RTT_SLOTS);
  rtts: number[] | null = null;
  onWelcome: (() => void) | null = null;
  /** Saturation with a cap on unacknowledged frames: writes again once acks made room. */
  onAck: (() => void) | null = null;

  constructor(readonly socket: Socket) {}

  readonly reader = new ServerFrameReader((opcode, b, start, end) => {
    if (opcode === 2 && this.welcome !== null) {
      // ack = [2, lastAppliedSeq]
      if (b[start] === 0x92 && b[start + 1] === ServerMessageType.ACK) {
        this.lastAck = readUint(b, start + 2);
        if (this.rtts !== null) this.rtts.push(performance.now() - this.sentAtMs[this.lastAck % RTT_SLOTS]!);
        this.onAck?.();
      }
    } else if (opcode === 2) {
      const m = parseServerMessage(decodeServerFrame(b.subarray(start, end)));
      if (m.type === ServerMessageType.WELCOME) {
        this.welcome = m;
        this.onWelcome?.();
      }
    } else if (opcode === 8) {
      this.closedWith = end - start >= 2 ? `${b.readUInt16BE(start)} ${b.subarray(start + 2, end).toString()}` : 'close without code';
    }
  });
}

export class RawIngest {
  private conns: Connection[] = [];
  private batches: PlannedSample[][] = [];
  private template = Buffer.alloc(0);
  private seqOffsets = new Uint32Array(0);
  /** Byte range of each single frame inside the template (paced mode sends them one by one). */
  private frameStarts = new Uint32Array(0);
  private running = false;
  private pacer: NodeJS.Timeout | null = null;
  private startedAt = 0;
  private cpuAtStart = 0;

  /** Connects, says hello, waits for every welcome and builds the frames from the catalogue. */
  async open(o: RawIngestOpen): Promise<{ catalog: Welcome['catalog'] }> {
    const hello = maskedFrame(encodeHello(o.labels, null));
    this.conns = await Promise.all(
      Array.from({ length: o.connections }, async (_, i) => {
        const { socket, rest } = await rawUpgrade({ host: o.host, port: o.port, path: o.path, localAddress: o.localAddresses[i % o.localAddresses.length] });
        const c = new Connection(socket);
        socket.on('data', (chunk: Buffer) => c.reader.push(chunk));
        socket.on('error', () => {});
        socket.on('close', () => (c.closedWith ??= 'connection dropped'));
        const welcomed = new Promise<void>((resolve, reject) => {
          c.onWelcome = resolve;
          socket.once('close', () => reject(new Error(`closed before the welcome: ${c.closedWith ?? ''}`)));
        });
        if (rest.length > 0) c.reader.push(rest);
        socket.write(hello);
        await welcomed;
        return c;
      }),
    );
    const welcome = this.conns[0]!.welcome!;
    this.buildFrames(welcome);
    return { catalog: welcome.catalog };
  }

  private buildFrames(welcome: Welcome): void {
    this.batches = planBatches(welcome.catalog.metrics);
    const frames = this.batches.map((batch) => {
      const payload = encodeDelta(SEQ_PLACEHOLDER, welcome.catalog.version, batch.map(wireSample), new Map());
      if (payload[2] !== 0xce) throw new Error('unexpected delta layout: the sequence number is not a uint32');
      return maskedFrame(payload);
    });
    const chunkFrames: Buffer[] = [];
    for (let i = 0; i < FRAMES_PER_CHUNK; i++) chunkFrames.push(frames[i % VARIANTS]!);
    this.template = Buffer.concat(chunkFrames);
    this.seqOffsets = new Uint32Array(FRAMES_PER_CHUNK);
    this.frameStarts = new Uint32Array(FRAMES_PER_CHUNK + 1);
    let pos = 0;
    chunkFrames.forEach((f, i) => {
      this.frameStarts[i] = pos;
      this.seqOffsets[i] = pos + payloadOffset(f) + 3;
      pos += f.length;
    });
    this.frameStarts[FRAMES_PER_CHUNK] = pos;
  }

  /** Frames `count` frames from the connection's next sequence number on, copied from the template. */
  private chunk(c: Connection, from: number, count: number): Buffer {
    const start = this.frameStarts[from]!;
    const buf = Buffer.from(this.template.subarray(start, this.frameStarts[from + count]!));
    for (let i = 0; i < count; i++) buf.writeUInt32BE(c.nextSeq++, this.seqOffsets[from + i]! - start);
    return buf;
  }

  /**
   * Saturation: each connection writes chunk after chunk while the kernel takes them, up to
   * `maxFramesPerConnection`, and with `maxUnacked` while fewer frames than that wait for their ack (with
   * many connections, loopback's socket buffers would otherwise hold millions of frames that the server
   * works through long after the window). Paced (`everyMs`): one frame per connection per tick, timing its ack.
   */
  start({ maxFramesPerConnection, everyMs, maxUnacked }: { maxFramesPerConnection: number; everyMs?: number | undefined; maxUnacked?: number | null | undefined }): void {
    const cap = typeof maxUnacked === 'number' && maxUnacked > 0 ? maxUnacked : Infinity;
    this.running = true;
    this.startedAt = performance.now();
    this.cpuAtStart = cpuSeconds();
    const write = (c: Connection, buf: Buffer): boolean => {
      c.pendingWrites++;
      return c.socket.write(buf, () => c.pendingWrites--);
    };
    if (everyMs !== undefined) {
      for (const c of this.conns) c.rtts = [];
      this.pacer = setInterval(() => {
        for (const c of this.conns) {
          if (c.closedWith !== null || c.nextSeq > maxFramesPerConnection) continue;
          c.sentAtMs[c.nextSeq % RTT_SLOTS] = performance.now();
          write(c, this.chunk(c, (c.nextSeq - 1) % FRAMES_PER_CHUNK, 1));
        }
      }, everyMs);
      return;
    }
    for (const c of this.conns) {
      const pump = (): void => {
        // Every chunk starts at a multiple of FRAMES_PER_CHUNK, so variant = (seq - 1) % VARIANTS holds.
        while (this.running && c.closedWith === null && c.nextSeq + FRAMES_PER_CHUNK - 1 <= maxFramesPerConnection) {
          if (c.nextSeq - 1 - c.lastAck + FRAMES_PER_CHUNK > cap) {
            waiting = true;
            return;
          }
          if (!write(c, this.chunk(c, 0, FRAMES_PER_CHUNK))) return;
        }
      };
      let waiting = false;
      if (Number.isFinite(cap)) {
        c.onAck = () => {
          if (waiting && c.nextSeq - 1 - c.lastAck + FRAMES_PER_CHUNK <= cap) {
            waiting = false;
            pump();
          }
        };
      }
      c.socket.on('drain', pump);
      pump();
    }
  }

  /** Stops writing, waits until everything written left this process (and, with `awaitAcks`, was acknowledged). */
  async stop({ awaitAcks, timeoutMs = 60_000 }: { awaitAcks: boolean; timeoutMs?: number }): Promise<RawIngestResult> {
    this.running = false;
    if (this.pacer !== null) clearInterval(this.pacer);
    const elapsedMs = performance.now() - this.startedAt;
    const generatorCpuSeconds = cpuSeconds() - this.cpuAtStart;
    const deadline = performance.now() + timeoutMs;
    const settled = (c: Connection): boolean => c.closedWith !== null || (c.pendingWrites === 0 && (!awaitAcks || c.lastAck === c.nextSeq - 1));
    while (!this.conns.every(settled) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const expected = new ExpectedTotals();
    for (const c of this.conns) expected.addCycled(this.batches, c.nextSeq - 1);
    return {
      framesSent: this.conns.reduce((n, c) => n + c.nextSeq - 1, 0),
      connections: this.conns.length,
      fullyAcked: this.conns.filter((c) => c.lastAck === c.nextSeq - 1).length,
      generatorCpuSeconds,
      elapsedMs,
      closes: this.conns.flatMap((c) => (c.closedWith === null ? [] : [c.closedWith])),
      ackRttMs: this.conns.flatMap((c) => c.rtts ?? []),
      expected: expected.toJSON(),
    };
  }

  close(): void {
    for (const c of this.conns) c.socket.destroy();
    this.conns = [];
  }
}
