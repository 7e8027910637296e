import { getHeapSpaceStatistics } from 'node:v8';

/**
 * Resident bytes of this isolate's young generation (new space and its large-object space). V8 grows it
 * with the allocation rate, up to 2 × 16 MiB of semi-spaces, and keeps it after a GC has emptied it: a
 * cost of the load, not of the sessions held, so the bench reports it apart from memory per session.
 */
export function youngGenerationBytes(): number {
  return getHeapSpaceStatistics()
    .filter((s) => s.space_name === 'new_space' || s.space_name === 'new_large_object_space')
    .reduce((sum, s) => sum + s.physical_space_size, 0);
}
