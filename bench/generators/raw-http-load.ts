/**
 * The baseline's load generator: keep-alive connections, each POSTing a prebuilt JSON batch of the
 * same 7 samples as one WebSocket frame and sending the next as soon as the answer (204, no body)
 * is in, as a browser flushing in a loop would. Answers are counted by their header terminator.
 */
import { connect, type Socket } from 'node:net';
import type { CatalogMetric } from '../../protocol/index.js';
import { cpuSeconds } from '../processes/child-process.js';
import type { JsonSample } from '../processes/express-baseline.js';
import { ExpectedTotals, labelsOf, planBatches, VARIANTS, type PlannedSample } from './sample-plan.js';

export interface HttpLoadOpen {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly localAddresses: readonly string[];
  readonly metrics: readonly CatalogMetric[];
}

export interface HttpLoadResult {
  readonly batchesSent: number;
  readonly answered: number;
  readonly generatorCpuSeconds: number;
  readonly elapsedMs: number;
  readonly expected: unknown;
}

const END_OF_HEAD = Buffer.from('\r\n\r\n');

class HttpConnection {
  sent = 0;
  answered = 0;
  /** Up to 3 bytes of a header terminator split across reads. */
  private carry = Buffer.alloc(0);

  constructor(readonly socket: Socket) {}

  /** Counts the answers completed in `chunk` (a 204 ends with its head). */
  countAnswers(chunk: Buffer): number {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let n = 0;
    let from = 0;
    for (let i = buf.indexOf(END_OF_HEAD, from); i >= 0; i = buf.indexOf(END_OF_HEAD, from)) {
      n++;
      from = i + 4;
    }
    this.carry = Buffer.from(buf.subarray(Math.max(from, buf.length - 3)));
    return n;
  }
}

export class RawHttpLoad {
  private conns: HttpConnection[] = [];
  private batches: PlannedSample[][] = [];
  private requests: Buffer[] = [];
  private running = false;
  private startedAt = 0;
  private cpuAtStart = 0;

  async open(o: HttpLoadOpen): Promise<void> {
    this.batches = planBatches(o.metrics);
    this.requests = this.batches.map((batch) => {
      const body = JSON.stringify({ metrics: batch.map((s): JsonSample => ({ name: s.metric.name, labels: labelsOf(s), value: s.value })) });
      return Buffer.from(
        `POST /metrics HTTP/1.1\r\nHost: ${o.host}:${o.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n${body}`,
      );
    });
    this.conns = await Promise.all(
      Array.from({ length: o.connections }, (_, i) =>
        new Promise<HttpConnection>((resolve, reject) => {
          const socket = connect({ host: o.host, port: o.port, localAddress: o.localAddresses[i % o.localAddresses.length]! });
          socket.setNoDelay(true);
          socket.once('error', reject);
          socket.once('connect', () => resolve(new HttpConnection(socket)));
        }),
      ),
    );
  }

  start(): void {
    this.running = true;
    this.startedAt = performance.now();
    this.cpuAtStart = cpuSeconds();
    for (const c of this.conns) {
      c.socket.on('data', (chunk: Buffer) => {
        c.answered += c.countAnswers(chunk);
        if (this.running && c.answered === c.sent) this.send(c);
      });
      this.send(c);
    }
  }

  private send(c: HttpConnection): void {
    // Each connection cycles through the variants from 0, as the WebSocket generator does.
    c.socket.write(this.requests[c.sent % VARIANTS]!);
    c.sent++;
  }

  async stop(timeoutMs = 30_000): Promise<HttpLoadResult> {
    this.running = false;
    const elapsedMs = performance.now() - this.startedAt;
    const generatorCpuSeconds = cpuSeconds() - this.cpuAtStart;
    const deadline = performance.now() + timeoutMs;
    while (this.conns.some((c) => c.answered < c.sent) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const expected = new ExpectedTotals();
    for (const c of this.conns) expected.addCycled(this.batches, c.answered);
    return {
      batchesSent: this.conns.reduce((n, c) => n + c.sent, 0),
      answered: this.conns.reduce((n, c) => n + c.answered, 0),
      generatorCpuSeconds, elapsedMs, expected: expected.toJSON(),
    };
  }

  close(): void {
    for (const c of this.conns) c.socket.destroy();
    this.conns = [];
  }
}
