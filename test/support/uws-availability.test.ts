import { describe, expect, it } from 'vitest';
import type { UwsLoaderResult } from '../../server/transport/uws-loader.js';
import { expectedUwsBuild, uwsTestPolicy } from './uws-availability.js';

const loads = (): UwsLoaderResult => ({ ok: true, module: {} as never, packageName: 'x', version: '1', binaryPath: '/x.node', passedOver: [] });
const fails = (): UwsLoaderResult => ({ ok: false, failures: [{ candidate: 'a', reason: 'GLIBC_2.38 not found (this system has glibc 2.36)' }] });
const FAILURES = `Node.js ${process.version} needs uws_${process.platform}_${process.arch}_${process.versions.modules}.node: a: GLIBC_2.38 not found (this system has glibc 2.36)`;

describe('uwsTestPolicy', () => {
  it('runs the uWS tests wherever uWS loads, whatever is set', () => {
    for (const env of [{}, { PROMSTREAM_TEST_UWS: 'unavailable:why' }, { PROMSTREAM_TEST_UWS: 'required' }]) {
      for (const ci of [true, false]) expect(uwsTestPolicy(env, ci, loads)).toEqual({ run: true, skipReason: null, failures: null });
    }
  });

  it('without uWS: under CI they run (and fail), outside CI they are skipped with a reason', () => {
    expect(uwsTestPolicy({}, true, fails)).toEqual({ run: true, skipReason: null, failures: FAILURES });
    expect(uwsTestPolicy({}, false, fails)).toEqual({
      run: false,
      skipReason: 'no uWebSockets.js build loads here (not CI, so skipped; set PROMSTREAM_TEST_UWS=required to fail instead)',
      failures: FAILURES,
    });
  });

  it('PROMSTREAM_TEST_UWS=unavailable:REASON skips them under CI too, naming REASON; =required runs them anywhere', () => {
    const env = { PROMSTREAM_TEST_UWS: 'unavailable: uWS 20.57 needs glibc>=2.38, this host has 2.36' };
    expect(uwsTestPolicy(env, true, fails)).toEqual({ run: false, skipReason: 'PROMSTREAM_TEST_UWS=unavailable: uWS 20.57 needs glibc>=2.38, this host has 2.36', failures: FAILURES });
    expect(uwsTestPolicy({ PROMSTREAM_TEST_UWS: 'required' }, false, fails)).toMatchObject({ run: true });
  });

  it('refuses any other value (a typo must not turn into a skip)', () => {
    expect(() => uwsTestPolicy({ PROMSTREAM_TEST_UWS: 'unavailable' }, true, fails)).toThrow('PROMSTREAM_TEST_UWS must be "required" or "unavailable:REASON", not "unavailable"');
    expect(() => uwsTestPolicy({ PROMSTREAM_TEST_UWS: 'skip' }, false, fails)).toThrow(/must be/);
  });
});

describe('expectedUwsBuild', () => {
  it('@btc-vision 20.57 for Node 20/22/24/25 on glibc >= 2.38, else @trufflesuite 20.30 for Node 16/18/20, else none', () => {
    const name = (abi: string, glibc: readonly [number, number]): string | undefined => expectedUwsBuild(abi, glibc)?.packageName;
    if (process.platform !== 'linux' || process.arch !== 'x64') return;
    expect(name('137', [2, 41])).toBe('@btc-vision/uwebsockets.js');
    expect(name('115', [2, 38])).toBe('@btc-vision/uwebsockets.js');
    expect(name('115', [2, 36])).toBe('@trufflesuite/uws-js-unofficial');
    expect(name('93', [2, 41])).toBe('@trufflesuite/uws-js-unofficial');
    expect(name('137', [2, 36])).toBeUndefined();
    expect(name('127', [2, 37])).toBeUndefined();
    expect(name('108', [2, 26])).toBeUndefined();
    expect(expectedUwsBuild('137', null)).toBeNull();
  });
});
