import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVE_OPTIONS, envName } from '../server/setup/option-table.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README stays true to the code', () => {
  it('lists every serve option with its env name, default and help, as --help does', () => {
    const rows = readme.split('\n').filter((l) => l.startsWith('| `--'));
    expect(rows).toEqual(SERVE_OPTIONS.map((o) => `| \`--${o.flag}\` | \`${envName(o.flag)}\` | ${o.defaultText} | ${o.help} |`));
  });

  it('shows the two commands a new user needs', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });
});
