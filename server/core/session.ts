import type { GaugeParts } from './series-store.js';
import type { TokenBucket } from './token-bucket.js';

/**
 * A session while a connection of this worker has it. What must survive the connection (its last
 * applied seq, its budgets, its token) is in its slot of the host's SlotTable; this is the worker's
 * working copy, and what only lives while attached (its gauge values).
 */
export interface Session<C> {
  readonly slot: number;
  readonly id: string;
  readonly token: string;
  /** Session label values in the whitelist's sessionLabels order, as a label object. */
  readonly labels: Readonly<Record<string, string>>;
  /** Index of the label combination in connected_clients. */
  readonly combo: number;
  lastAppliedSeq: number;
  attachedTo: C;
  /** Its gauge values; created with its first delta, so an idle session does not carry an empty Map. */
  gauges: GaugeParts | null;
  /** Samples-per-second budget. */
  readonly sampleBudget: TokenBucket;
  /** Budget for the drop counts the client reports, made the first time it reports any. */
  dropBudget: TokenBucket | null;
}
