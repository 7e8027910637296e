import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../options.js';
import { resolveWsRuntime, WS_WORKERS_COMMAND } from './ws-node.js';

describe('the Node.js for ingest-workers\' ws rows (--ws-node)', () => {
  const notes: string[] = [];
  const note = (line: string): void => void notes.push(line);

  it('is the bench\'s own Node where that shares a port between threads, whatever was chosen', () => {
    expect(resolveWsRuntime('off', note, 'v22.12.0')).toEqual({ ok: true, node: null, version: 'v22.12.0' });
    expect(resolveWsRuntime('/nowhere/node', note, 'v24.1.0')).toEqual({ ok: true, node: null, version: 'v24.1.0' });
    expect(notes).toEqual([]);
  });

  it('off: the rows stay unmeasured, and the reason names both ways to run them', () => {
    expect(resolveWsRuntime('off', note, 'v20.20.2')).toEqual({
      ok: false,
      why: `ws --workers needs Node.js ≥ 22.12 to share a port between threads (this is v20.20.2); --ws-node auto runs them on Node 24, or by hand: ${WS_WORKERS_COMMAND}`,
    });
  });

  it('a path that does not run, or runs a Node before 22.12, is refused with what it found', () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'promstream-ws-node-')), 'node');
    const r = resolveWsRuntime(missing, note, 'v20.20.2');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.why).toMatch(new RegExp(`^ws --workers needs Node\\.js ≥ 22\\.12 to share a port between threads \\(this is v20\\.20\\.2\\), and --ws-node ${missing} does not run \\(.*ENOENT`));
    const old = join(mkdtempSync(join(tmpdir(), 'promstream-ws-node-')), 'node');
    writeFileSync(old, '#!/bin/sh\necho v22.11.0\n', { mode: 0o755 });
    expect(resolveWsRuntime(old, note, 'v20.20.2')).toEqual({ ok: false, why: `ws --workers needs Node.js ≥ 22.12 to share a port between threads (this is v20.20.2), and --ws-node ${old} is v22.11.0, also before 22.12` });
  });

  it('a path to a Node from 22.12 on runs the rows', () => {
    const fake = join(mkdtempSync(join(tmpdir(), 'promstream-ws-node-')), 'node');
    writeFileSync(fake, '#!/bin/sh\necho v22.12.0\n', { mode: 0o755 });
    expect(resolveWsRuntime(fake, note, 'v20.20.2')).toEqual({ ok: true, node: fake, version: 'v22.12.0' });
  });

  it('defaults to auto, and to off in a quick run (a smoke test fetches nothing)', () => {
    expect(parseBenchArgs([]).wsNode).toBe('auto');
    expect(parseBenchArgs(['--quick']).wsNode).toBe('off');
    expect(parseBenchArgs(['--quick', '--ws-node', 'auto']).wsNode).toBe('auto');
    expect(parseBenchArgs(['--ws-node=/opt/node/bin/node']).wsNode).toBe('/opt/node/bin/node');
    expect(() => parseBenchArgs(['--ws-node'])).toThrow('--ws-node needs a value');
  });
});
