/**
 * Gives every whitelisted series a value before the scrape scenario times /metrics (a value of 0 is
 * cheaper to print than a real one): one raw session sends one sample per series in frames of
 * FILL_SAMPLES_PER_FRAME and stays connected, so its gauge parts stay in the totals.
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
import { maskedFrame, rawUpgrade, readUint, ServerFrameReader } from './raw-websocket.js';
import { digits, ExpectedTotals, wireSample, type PlannedSample } from './sample-plan.js';

/** Well under the default 4096 samples and 32 KiB per frame. */
const FILL_SAMPLES_PER_FRAME = 2000;

export interface FilledSession {
  readonly series: number;
  readonly expected: ExpectedTotals;
  close(): void;
}

export async function fillEverySeries(o: { host: string; port: number; path: string; labels: Readonly<Record<string, string>>; localAddress: string }): Promise<FilledSession> {
  const { socket, rest } = await rawUpgrade(o);
  let welcome: Welcome | null = null;
  let lastAck = 0;
  let closed: string | null = null;
  const waiters = new Set<() => void>();
  const reader = new ServerFrameReader((opcode, b, start, end) => {
    if (opcode === 8) closed = end - start >= 2 ? `${b.readUInt16BE(start)} ${b.subarray(start + 2, end).toString()}` : 'closed';
    else if (opcode !== 2) return;
    else if (welcome === null) {
      const m = parseServerMessage(decodeServerFrame(b.subarray(start, end)));
      if (m.type === ServerMessageType.WELCOME) welcome = m;
    } else lastAck = readUint(b, start + 2);
    for (const w of waiters) w();
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    closed ??= 'connection dropped';
    for (const w of waiters) w();
  });
  const until = (cond: () => boolean, what: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) done(resolve);
        else if (closed !== null) done(() => reject(new Error(`fill: server closed the session (${closed}) while waiting for ${what}`)));
      };
      const done = (f: () => void): void => {
        waiters.delete(check);
        clearTimeout(timer);
        f();
      };
      const timer = setTimeout(() => done(() => reject(new Error(`fill: no ${what} within 60 s`))), 60_000);
      waiters.add(check);
      check();
    });
  if (rest.length > 0) reader.push(rest);
  socket.write(maskedFrame(encodeHello(o.labels, null)));
  await until(() => welcome !== null, 'welcome');
  const w = welcome as unknown as Welcome;

  const expected = new ExpectedTotals();
  const all: PlannedSample[] = [];
  w.catalog.metrics.forEach((metric, metricIndex) => {
    const radices = metric.labelValues.map((v) => v.length);
    const seriesCount = radices.reduce((a, b) => a * b, 1);
    for (let s = 0; s < seriesCount; s++) {
      const labelIndexes = digits(s, radices);
      if (metric.type === 'histogram') {
        const bucket = s % (metric.buckets.length + 1);
        all.push({ metricIndex, metric, labelIndexes, bucket, value: bucket < metric.buckets.length ? metric.buckets[bucket]! : (metric.buckets.at(-1) ?? 1) * 2 });
      } else {
        all.push({ metricIndex, metric, labelIndexes, bucket: 0, value: metric.type === 'counter' ? 1 + ((s * 7919 + metricIndex) % 100_000) : (s % 50) + 0.5 });
      }
    }
  });
  let seq = 0;
  for (let i = 0; i < all.length; i += FILL_SAMPLES_PER_FRAME) {
    const part = all.slice(i, i + FILL_SAMPLES_PER_FRAME);
    socket.write(maskedFrame(encodeDelta(++seq, w.catalog.version, part.map(wireSample), new Map())));
    expected.addBatch(part);
  }
  await until(() => lastAck === seq, `ack ${seq}`);
  return { series: all.length, expected, close: () => (socket as Socket).destroy() };
}
