import { request } from 'node:http';

/**
 * Reads a server's /metrics: the aggregator's own counters (frames, samples, sessions), prom-client's
 * process metrics (CPU, resident memory, heap) and every whitelisted series. This is the only probe
 * that works against a deployment (`--metrics URL`), so the scenarios lean on it.
 */
export interface ScrapeResult {
  readonly samples: Map<string, number>;
  /** Request start to the last byte of the body. */
  readonly elapsedMs: number;
  readonly bytes: number;
}

export async function scrape(url: string, timeoutMs = 30_000): Promise<ScrapeResult> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  const elapsedMs = performance.now() - started;
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return { samples: parseExposition(text), elapsedMs, bytes: Buffer.byteLength(text) };
}

/**
 * Times one GET of `url` from request to last byte as a lean client sees it: the body is counted, not
 * decoded or kept, so the figure is the server's (render, write) and the loopback's, not the bench's.
 */
export function timeScrape(url: string, timeoutMs = 30_000): Promise<{ elapsedMs: number; firstByteMs: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      // The head goes out with the body once the body is rendered: this is the server's render time.
      const firstByteMs = performance.now() - started;
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => (res.statusCode === 200 ? resolve({ elapsedMs: performance.now() - started, firstByteMs, bytes }) : reject(new Error(`${url} answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Every sample line keyed by its `name{labels}` text, exactly as exposed. */
export function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const raw = line.slice(cut + 1);
    samples.set(line.slice(0, cut), raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw));
  }
  return samples;
}

/** Sum of every series of a metric family (e.g. connected_clients over its session labels). */
export function familyTotal(samples: ReadonlyMap<string, number>, name: string): number {
  let total = 0;
  for (const [key, v] of samples) if (key === name || key.startsWith(`${name}{`)) total += v;
  return total;
}

/** The aggregator's own figures from one scrape. */
export interface ServerFigures {
  readonly atMs: number;
  readonly frames: number;
  readonly samplesApplied: number;
  readonly connected: number;
  readonly sessionsOpened: number;
  readonly sessionsResumed: number;
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

export function figuresOf(samples: ReadonlyMap<string, number>, atMs: number): ServerFigures {
  const v = (k: string): number => samples.get(k) ?? NaN;
  return {
    atMs,
    frames: v('promstream_frames_received_total'),
    samplesApplied: v('promstream_samples_applied_total'),
    connected: familyTotal(samples, 'connected_clients'),
    sessionsOpened: v('promstream_sessions_opened_total'),
    sessionsResumed: v('promstream_sessions_resumed_total'),
    cpuSeconds: v('process_cpu_seconds_total'),
    rssBytes: v('process_resident_memory_bytes'),
    heapUsedBytes: v('nodejs_heap_size_used_bytes'),
  };
}
