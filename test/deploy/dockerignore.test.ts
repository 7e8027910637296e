import { describe, expect, it } from 'vitest';
import { DockerIgnore } from './dockerignore.js';

// Cases from Docker's documentation of .dockerignore and moby/patternmatcher's tests.
describe('DockerIgnore (the rules docker build applies to its context)', () => {
  it('matches a directory and everything under it', () => {
    const rules = new DockerIgnore('node_modules\n');
    expect(rules.ignores('node_modules')).toBe(true);
    expect(rules.ignores('node_modules/ws/index.js')).toBe(true);
    expect(rules.ignores('server/node_modules.ts')).toBe(false);
  });

  it('reads * as one path segment and ** as any number of them', () => {
    const rules = new DockerIgnore('*/temp*\n**/*.test.ts\n');
    expect(rules.ignores('somedir/temporary.txt')).toBe(true);
    expect(rules.ignores('somedir/sub/temporary.txt')).toBe(false);
    expect(rules.ignores('a.test.ts')).toBe(true);
    expect(rules.ignores('server/config/a.test.ts')).toBe(true);
    expect(rules.ignores('server/config/a.ts')).toBe(false);
  });

  it('lets the last matching line win, ! re-including', () => {
    const rules = new DockerIgnore('*.md\n!README*.md\nREADME-secret.md\n');
    expect(rules.ignores('CHANGES.md')).toBe(true);
    expect(rules.ignores('README.md')).toBe(false);
    expect(rules.ignores('README-secret.md')).toBe(true);
  });

  it('ignores comments, blank lines, a leading slash and a trailing slash', () => {
    const rules = new DockerIgnore('# comment\n\n/dist/\n');
    expect(rules.ignores('dist/server/cli.js')).toBe(true);
    expect(rules.ignores('# comment')).toBe(false);
  });

  it('walks an ignored directory only when a ! line may re-include something in it', () => {
    const rules = new DockerIgnore('*\n!server\n!docs/keep.md\n');
    expect(rules.ignores('server/cli.ts')).toBe(false);
    expect(rules.ignores('docs')).toBe(true);
    expect(rules.mayReinclude('docs')).toBe(true);
    expect(rules.ignores('docs/keep.md')).toBe(false);
    expect(rules.ignores('docs/other.md')).toBe(true);
    expect(rules.mayReinclude('node_modules')).toBe(false);
  });

  it("applies the repository's .dockerignore: sources in, tests, build output and dependencies out", async () => {
    const { readFile } = await import('node:fs/promises');
    const { REPO_ROOT } = await import('../support/spawn-cli.js');
    const rules = new DockerIgnore(await readFile(`${REPO_ROOT}/.dockerignore`, 'utf8'));
    for (const kept of ['package.json', 'package-lock.json', 'tsconfig.build.json', 'server/cli.ts', 'protocol/codec.ts', 'bin/promstream.js', 'examples/loadgen.mjs']) {
      expect(rules.ignores(kept), kept).toBe(false);
    }
    for (const dropped of ['node_modules/ws/index.js', 'dist/server/cli.js', '.git/HEAD', 'test/cli.test.ts', 'server/series-store.test.ts', 'bench/run.js', 'Dockerfile', 'deploy/k8s/deployment.yaml']) {
      expect(rules.ignores(dropped), dropped).toBe(true);
    }
  });
});
