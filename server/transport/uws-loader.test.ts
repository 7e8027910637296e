/**
 * The loader against the real npm alias and against fake packages in a temporary directory laid
 * out like node_modules. Every fake package's JavaScript entry point writes to stdout and stderr and
 * sets a global: none of that may happen, since the loader only ever opens the binary.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { INSTALLED_UWS_BUILDS, expectedUwsBuild, glibcVersion } from '../../test/support/uws-availability.js';
import { defaultUwsCandidates, dlopenReason, formatUwsFailures, loadNativeUws, uwsBinaryName, type UwsCandidate } from './uws-loader.js';

const BINARY = uwsBinaryName();
const root = mkdtempSync(join(tmpdir(), 'promstream-uws-loader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The entry point a package's own loader would run: loud, and leaves a mark. */
const LOUD_ENTRY = `
globalThis.__uwsLoaderTestEntryRan = true;
console.warn('This version of uWS is not compatible (a foreign warning)\\n    at a stack trace');
process.stdout.write('stdout from the package\\n');
module.exports = { App() {} };
`;

let project = 0;

/** A project directory with node_modules/<name>, whose binaries (name -> bytes) sit in `binaryDir`. */
function fakeProject(name: string, version: string, binaryDir: string, binaries: Record<string, Buffer>): string {
  const dir = join(root, `project-${project++}`);
  const packageDir = join(dir, 'node_modules', name);
  mkdirSync(join(packageDir, binaryDir), { recursive: true });
  writeFileSync(join(packageDir, 'package.json'), JSON.stringify({ name, version, main: 'uws.js' }));
  writeFileSync(join(packageDir, 'uws.js'), LOUD_ENTRY);
  for (const [file, bytes] of Object.entries(binaries)) writeFileSync(join(packageDir, binaryDir, file), bytes);
  return dir;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function candidate(label: string, specifier: string, from: string): UwsCandidate {
  return { label, specifier, from: [from] };
}

let writes: MockInstance[] = [];
beforeEach(() => {
  delete (globalThis as { __uwsLoaderTestEntryRan?: boolean }).__uwsLoaderTestEntryRan;
  writes = [
    vi.spyOn(process.stdout, 'write'),
    vi.spyOn(process.stderr, 'write'),
    ...(['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((method) => vi.spyOn(console, method)),
  ];
});
afterEach(() => {
  // Checked before the spies go, so that a failure message cannot count as output.
  const calls = writes.map((spy) => spy.mock.calls.length);
  const entryRan = (globalThis as { __uwsLoaderTestEntryRan?: boolean }).__uwsLoaderTestEntryRan === true;
  vi.restoreAllMocks();
  expect(calls, 'stdout.write, stderr.write, console.log/info/warn/error/debug/trace calls').toEqual(writes.map(() => 0));
  expect(entryRan, "a package's own entry point ran").toBe(false);
});

describe('loadNativeUws', () => {
  it('loads the first installed build that runs here (@btc-vision 20.57 on glibc >= 2.38, else @trufflesuite 20.30 on Node <= 20), else says why each did not', () => {
    const result = loadNativeUws();
    const expected = expectedUwsBuild();
    const glibc = glibcVersion();
    const btc = INSTALLED_UWS_BUILDS[0]!;
    const truffle = INSTALLED_UWS_BUILDS[1]!;
    if (expected !== null) {
      const binaryPath = join(process.cwd(), 'node_modules', expected.dir, expected === truffle ? 'binaries' : '', BINARY);
      expect(result).toMatchObject({ ok: true, packageName: expected.packageName, version: expected.version, binaryPath });
      if (!result.ok) return;
      expect(typeof result.module.App).toBe('function');
      // The project here is promstream itself: its uWebSockets.js is ours, tried once, as ours.
      expect(result.passedOver.map((f) => f.candidate)).not.toContain(defaultUwsCandidates()[0]?.label);
      // On Node 20 and glibc < 2.38 (Debian 12), @btc-vision's binary is passed over for its glibc.
      if (expected === truffle) {
        expect(result.passedOver).toEqual([
          { candidate: '@btc-vision/uwebsockets.js', reason: `@btc-vision/uwebsockets.js@20.57.0: ${BINARY} does not load: GLIBC_2.38 not found (this system has glibc ${glibc!.join('.')})` },
        ]);
      } else {
        expect(result.passedOver).toEqual([]);
      }
      return;
    }
    // E.g. Node 24 on Debian 12: @btc-vision's binary needs a newer glibc, @trufflesuite has none for this ABI.
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const reasons = Object.fromEntries(result.failures.map((f) => [f.candidate, f.reason]));
    const abi = process.versions.modules;
    expect(reasons['@btc-vision/uwebsockets.js']).toBe(
      btc.abis.includes(abi)
        ? `@btc-vision/uwebsockets.js@20.57.0: ${BINARY} does not load: GLIBC_2.38 not found (this system has glibc ${glibc!.join('.')})`
        : `@btc-vision/uwebsockets.js@20.57.0 has no ${BINARY} (linux-x64 ABIs 115, 127, 137, 141; this Node.js is ABI ${abi})`,
    );
    expect(reasons["promstream's uWebSockets.js"]).toBe(`@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 has no ${BINARY} (linux-x64 ABIs 93, 108, 115; this Node.js is ABI ${abi})`);
  });

  it('tries @btc-vision/uwebsockets.js before the @trufflesuite alias, after a uWebSockets.js of the project', () => {
    expect(defaultUwsCandidates('/srv/app').map((c) => [c.label, c.specifier])).toEqual([
      ['uWebSockets.js of the project (/srv/app)', 'uWebSockets.js'],
      ['@btc-vision/uwebsockets.js', '@btc-vision/uwebsockets.js'],
      ["promstream's uWebSockets.js", 'uWebSockets.js'],
    ]);
  });

  it('names a package without a binary for this platform and ABI, with the ABIs it has', () => {
    const other = `uws_${process.platform}_${process.arch}_1.node`;
    const dir = fakeProject('uWebSockets.js', '20.99.0', '', { [other]: Buffer.from('x'), 'uws_plan9_mips_999.node': Buffer.from('x') });
    const result = loadNativeUws({ candidates: [candidate('fake', 'uWebSockets.js', dir)] });
    expect(result).toEqual({
      ok: false,
      failures: [{ candidate: 'fake', reason: `uWebSockets.js@20.99.0 has no ${BINARY} (${process.platform}-${process.arch} ABIs 1; this Node.js is ABI ${process.versions.modules})` }],
    });
  });

  it('says so when a package has no binaries for this platform at all', () => {
    const dir = fakeProject('uWebSockets.js', '20.98.0', 'binaries', {});
    const result = loadNativeUws({ candidates: [candidate('fake', 'uWebSockets.js', dir)] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failures[0]?.reason).toBe(
      `uWebSockets.js@20.98.0 has no ${BINARY} (no ${process.platform}-${process.arch} binaries at all; this Node.js is ABI ${process.versions.modules})`,
    );
  });

  it.each([
    ['garbage', Buffer.from('this is not a shared object, only text in a .node file\n'.repeat(40)), /invalid ELF header|not a valid|unknown file type/i],
    ['empty', Buffer.alloc(0), /file too short|not a valid|unknown file type/i],
  ])('reports a %s binary that dlopen refuses in one line, without the file path', (_kind, bytes, message) => {
    const dir = fakeProject('@btc-vision/uwebsockets.js', '20.57.0', '', { [BINARY]: bytes });
    const result = loadNativeUws({ candidates: [candidate('fake btc', '@btc-vision/uwebsockets.js', dir)] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const [failure] = result.failures;
    expect(failure?.candidate).toBe('fake btc');
    expect(failure?.reason).toMatch(new RegExp(`^${escape(`@btc-vision/uwebsockets.js@20.57.0: ${BINARY} does not load: `)}`));
    expect(failure?.reason).toMatch(message);
    expect(failure?.reason).not.toContain(dir);
    expect(failure?.reason).not.toContain('\n');
  });

  it("finds @trufflesuite's layout (binaries/) as well as the authors' (package root)", () => {
    const trufflesuite = fakeProject('uWebSockets.js', '20.30.0-fake', 'binaries', { [BINARY]: Buffer.from('garbage') });
    const result = loadNativeUws({ candidates: [candidate('fake', 'uWebSockets.js', trufflesuite)] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failures[0]?.reason).toContain(`${BINARY} does not load: `);
  });

  it('tries every candidate in order and lists each reason; formatUwsFailures makes one line of them', () => {
    const noBinary = fakeProject('uWebSockets.js', '1.0.0', '', {});
    const broken = fakeProject('@btc-vision/uwebsockets.js', '20.57.0', '', { [BINARY]: Buffer.from('garbage') });
    const result = loadNativeUws({
      candidates: [
        candidate('absent', 'uWebSockets.js', join(root, 'nowhere')),
        candidate('no binary', 'uWebSockets.js', noBinary),
        candidate('broken', '@btc-vision/uwebsockets.js', broken),
      ],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failures.map((f) => f.candidate)).toEqual(['absent', 'no binary', 'broken']);
    expect(result.failures[0]?.reason).toBe('not installed');
    const line = formatUwsFailures(result.failures);
    expect(line).toMatch(/^absent: not installed; no binary: uWebSockets\.js@1\.0\.0 has no .*; broken: @btc-vision\/uwebsockets\.js@20\.57\.0: .* does not load: .*$/);
    expect(line).not.toContain('\n');
  });

  it("tries a project's own uWebSockets.js first, then falls back to promstream's", () => {
    const project = fakeProject('uWebSockets.js', '20.57.0', '', { [BINARY]: Buffer.from('garbage') });
    const result = loadNativeUws({ cwd: project });
    const first = { candidate: `uWebSockets.js of the project (${project})`, reason: expect.stringContaining('uWebSockets.js@20.57.0: ') };
    if (result.ok) expect(result.passedOver[0]).toEqual(first);
    else expect(result.failures[0]).toEqual(first);
  });
});

describe('loadNativeUws: a uWebSockets.js in the directory promstream installs its alias into', () => {
  /** One node_modules holding both names, as when promstream is the project (or the image's /app). */
  function sharedTree(aliasName: string): string {
    const dir = fakeProject('uWebSockets.js', '20.57.0', '', { [BINARY]: Buffer.from('garbage') });
    writeFileSync(join(dir, 'node_modules', 'uWebSockets.js', 'package.json'), JSON.stringify({ name: aliasName, version: '20.57.0' }));
    mkdirSync(join(dir, 'node_modules', '@btc-vision', 'uwebsockets.js'), { recursive: true });
    writeFileSync(join(dir, 'node_modules', '@btc-vision', 'uwebsockets.js', 'package.json'), JSON.stringify({ name: '@btc-vision/uwebsockets.js', version: '20.57.0' }));
    writeFileSync(join(dir, 'node_modules', '@btc-vision', 'uwebsockets.js', BINARY), 'garbage');
    return dir;
  }
  const candidatesIn = (dir: string): UwsCandidate[] => [
    candidate('project', 'uWebSockets.js', dir),
    candidate('btc', '@btc-vision/uwebsockets.js', dir),
    { label: 'own', specifier: 'uWebSockets.js', from: [dir], installs: '@trufflesuite/uws-js-unofficial' },
  ];

  it('is promstream\'s alias when it is the package promstream installs: tried last, as its own', () => {
    const result = loadNativeUws({ candidates: candidatesIn(sharedTree('@trufflesuite/uws-js-unofficial')) });
    expect(result.ok ? [] : result.failures.map((f) => f.candidate)).toEqual(['btc', 'own']);
  });

  it("is the user's when another package replaced the alias (the authors' build installed there): tried first, once", () => {
    const result = loadNativeUws({ candidates: candidatesIn(sharedTree('uWebSockets.js')) });
    expect(result.ok ? [] : result.failures.map((f) => f.candidate)).toEqual(['project', 'btc']);
  });
});

describe('dlopenReason', () => {
  const binary = '/srv/app/node_modules/@btc-vision/uwebsockets.js/uws_linux_x64_137.node';

  it('shortens the glibc version error of a binary built on a newer distribution', () => {
    // As Node 24 reports @btc-vision/uwebsockets.js@20.57.0 on Debian 12.
    const message = `/lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by ${binary})`;
    expect(dlopenReason(message, binary, () => '2.36')).toBe('GLIBC_2.38 not found (this system has glibc 2.36)');
    expect(dlopenReason(message, binary, () => undefined)).toBe('GLIBC_2.38 not found');
  });

  it('drops the path from other dlopen errors', () => {
    expect(dlopenReason(`${binary}: invalid ELF header`, binary, () => '2.36')).toBe('invalid ELF header');
    expect(dlopenReason(`libfoo.so.1: cannot open shared object file: No such file or directory`, binary)).toBe(
      'libfoo.so.1: cannot open shared object file: No such file or directory',
    );
  });
});

describe('formatUwsFailures', () => {
  it('joins label and reason, and does not repeat a label the reason starts with', () => {
    expect(
      formatUwsFailures([
        { candidate: 'uWebSockets.js of the project (/srv/app)', reason: 'not installed' },
        { candidate: '@btc-vision/uwebsockets.js', reason: '@btc-vision/uwebsockets.js@20.57.0: uws_linux_x64_137.node does not load: GLIBC_2.38 not found' },
      ]),
    ).toBe('uWebSockets.js of the project (/srv/app): not installed; @btc-vision/uwebsockets.js@20.57.0: uws_linux_x64_137.node does not load: GLIBC_2.38 not found');
  });
});
