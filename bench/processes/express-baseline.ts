/**
 * The design promstream replaced, for the baseline: every client POSTs a JSON batch of samples by name
 * and labels to an express endpoint, which checks each against the whitelist and applies it to
 * prom-client metrics. Measured in the same run as the WebSocket ingest, on the same core.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Whitelist } from '../../server/index.js';

/** One sample of a POSTed batch: `{ name, labels, value }` (value: increment, observation or gauge value). */
export interface JsonSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface BaselineServer {
  readonly port: number;
  /** Batches (POSTs) applied so far. */
  readonly batches: () => number;
  close(): Promise<void>;
}

interface Allowed {
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labels: ReadonlyMap<string, ReadonlySet<string>>;
  readonly metric: Counter | Gauge | Histogram;
}

export async function startExpressBaseline(whitelist: Whitelist): Promise<BaselineServer> {
  const registry = new Registry();
  const allowed = new Map<string, Allowed>();
  for (const m of whitelist.metrics) {
    const common = { name: m.name, help: m.help, labelNames: m.labels.map((l) => l.name), registers: [registry] };
    const metric = m.type === 'counter' ? new Counter(common) : m.type === 'gauge' ? new Gauge(common) : new Histogram({ ...common, buckets: [...m.buckets] });
    allowed.set(m.name, { type: m.type, labels: new Map(m.labels.map((l) => [l.name, new Set(l.allowedValues)])), metric });
  }
  let batches = 0;
  let rejected = 0;

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '64kb' }));
  app.post('/metrics', (req, res) => {
    const body: unknown = req.body;
    const samples: unknown = body !== null && typeof body === 'object' && 'metrics' in body ? body.metrics : undefined;
    if (!Array.isArray(samples)) {
      res.status(400).end();
      return;
    }
    for (const s of samples as JsonSample[]) {
      const a = allowed.get(s.name);
      const labels = s.labels ?? {};
      const names = Object.keys(labels);
      if (a === undefined || typeof s.value !== 'number' || !Number.isFinite(s.value) || names.length !== a.labels.size || !names.every((n) => a.labels.get(n)?.has(labels[n]!) === true)) {
        rejected++;
        continue;
      }
      if (a.type === 'counter') (a.metric as Counter).inc(labels, s.value);
      else if (a.type === 'gauge') (a.metric as Gauge).set(labels, s.value);
      else (a.metric as Histogram).observe(labels, s.value);
    }
    batches++;
    res.status(204).end();
  });
  app.get('/metrics', (_req, res) => {
    registry.metrics().then((text) => res.type(registry.contentType).send(`${text}bench_baseline_rejected_total ${rejected}\n`), () => res.status(500).end());
  });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  server.keepAliveTimeout = 60_000;
  return {
    port: (server.address() as AddressInfo).port,
    batches: () => batches,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
