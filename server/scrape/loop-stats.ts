import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { MetricBlock } from './metric-block.js';

const EVERY_MS = 5_000;

/** Writes this event loop's delay (p99) and utilization into its metric block every few seconds; returns the stop. */
export function watchEventLoop(block: MetricBlock): () => void {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    block.loop(delay.percentile(99) / 1e9, performance.eventLoopUtilization(now, last).utilization);
    last = now;
    delay.reset();
  }, EVERY_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    delay.disable();
  };
}
