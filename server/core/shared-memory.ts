/**
 * Unused bytes at both ends of the shared memory that one worker writes on every frame (its metric
 * block, its series region). The main thread allocates those buffers one after another, so without them
 * the end of worker 0's and the start of worker 1's fall into one cache line, and every write by one
 * worker takes the line away from the other's core (false sharing: two threads each incrementing a
 * number, at the end of one such buffer and at the start of the next, took 30 ns per increment on this
 * 2-core machine instead of 4 ns). Two lines, as x86's adjacent-line prefetcher fetches lines in pairs.
 */
export const SHARED_PAD_BYTES = 128;
