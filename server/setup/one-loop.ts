import type { LabelSpec } from '../config/types.js';
import { SlotTable } from '../core/slot-table.js';
import { MetricBlock, MetricLayout } from '../scrape/metric-block.js';
import { SelfMetrics } from '../scrape/self-metrics.js';

/** What one event loop serving every client holds (--workers 1): one metric block, a session table of its own. */
export interface OneLoopState {
  readonly block: MetricBlock;
  readonly slots: SlotTable;
  readonly metrics: SelfMetrics;
}

export function oneLoopState(sessionLabels: readonly LabelSpec[], maxSessions: number, version: string): OneLoopState {
  const layout = new MetricLayout(sessionLabels);
  const block = new MetricBlock(layout);
  const slots = new SlotTable(new SharedArrayBuffer(SlotTable.bytesFor(maxSessions)), 0);
  const metrics = new SelfMetrics({ layout, blocks: () => [block.values], resumable: () => slots.detached, liveWorkers: () => 1 }, version);
  return { block, slots, metrics };
}
