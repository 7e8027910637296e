/**
 * What a promstream worker thread runs under the bench: the server's own worker-main (its URL is the
 * last argv entry), plus one request the bench sends to it — a full GC, answered with this thread's V8
 * heap figures — so that memory readings with --workers are taken after every isolate collected, as
 * they are with one event loop. The server's message handler ignores the request; the supervisor
 * ignores the answer.
 */
import { getHeapStatistics } from 'node:v8';
import { youngGenerationBytes } from './young-generation.js';
import { parentPort } from 'node:worker_threads';

export interface WorkerGcDone {
  readonly t: 'bench-gc-done';
  readonly heapUsedBytes: number;
  readonly heapResidentBytes: number;
  readonly youngGenerationBytes: number;
}

parentPort!.on('message', (m: { t?: unknown } | null) => {
  if (m === null || typeof m !== 'object' || m.t !== 'bench-gc') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  setTimeout(() => {
    gc?.();
    const h = getHeapStatistics();
    const done: WorkerGcDone = { t: 'bench-gc-done', heapUsedBytes: h.used_heap_size, heapResidentBytes: h.total_physical_size, youngGenerationBytes: youngGenerationBytes() };
    parentPort!.postMessage(done);
  }, 50);
});

await import(process.argv.at(-1)!);
