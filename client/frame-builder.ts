import { RejectReason, encodeDelta, type WireLimits } from '../protocol/index.js';
import type { Entry, KnownCatalog, PendingDeltas } from './pending-deltas.js';

/** The next delta, encoded, with what it carries (to put back if it is never applied). */
export interface Frame {
  readonly bytes: Uint8Array;
  readonly entries: Entry[];
  readonly drops: ReadonlyMap<string, number>;
}

/**
 * Takes the next frame out of `pending`: as many samples as the server's limits allow, in both count
 * (maxSamplesPerFrame) and bytes (maxFrameBytes). A frame over the byte limit is put back and half as
 * many samples are taken, until it fits; a sample too big to fit alone is dropped and counted
 * (sample_too_big): sent, it would be closed with 1009, resumed and sent again, forever. What stays in
 * `pending` goes out in the next frame.
 */
export function takeFrame(pending: PendingDeltas, catalog: KnownCatalog, limits: WireLimits, seq: number, withAllGauges: boolean): Frame {
  let maxSamples = limits.maxSamplesPerFrame;
  let allGauges = withAllGauges;
  for (;;) {
    const taken = pending.take(catalog, maxSamples, allGauges);
    // Taken gauges that are put back stay in the entries: later rounds need not add them again.
    allGauges = false;
    const bytes = encodeDelta(seq, catalog.catalog.version, taken.samples, taken.drops);
    if (bytes.byteLength <= limits.maxFrameBytes || taken.samples.length === 0) {
      // Without samples a frame is its drops alone, which always fit (the server's minimum maxFrameBytes).
      return { bytes, entries: taken.entries, drops: taken.drops };
    }
    if (taken.samples.length > 1) {
      pending.restore(taken.entries, taken.drops);
      maxSamples = Math.max(1, taken.samples.length >> 1);
      continue;
    }
    pending.restore([], taken.drops);
    pending.discard(taken.entries[0]!, RejectReason.SAMPLE_TOO_BIG);
    maxSamples = limits.maxSamplesPerFrame;
  }
}
