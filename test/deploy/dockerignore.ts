/**
 * The build context Docker would send: the rules of .dockerignore as Docker applies them (moby's
 * patternmatcher: Go filepath.Match globs plus `**`, `!` re-includes, the last matching line wins, and a
 * line that matches a parent directory matches everything under it), and a copy of the context.
 */
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface Rule {
  readonly text: string;
  readonly exclusion: boolean;
  readonly regex: RegExp;
  readonly segments: readonly string[];
}

/** One glob as a regular expression, the way patternmatcher compiles it. */
function globToRegExp(glob: string): RegExp {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        i++;
        // `**/` is `**`; a trailing `**` takes everything, an inner one any number of directories.
        if (glob[i + 1] === '/') i++;
        out += i + 1 >= glob.length ? '.*' : '(.*/)?';
      } else {
        out += '[^/]*';
      }
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '\\' && i + 1 < glob.length) {
      out += `\\${glob[++i]!}`;
    } else if (ch === '[' || ch === ']') {
      out += ch; // character classes pass through, as in filepath.Match
    } else {
      out += ch.replace(/[.+^${}()|\\-]/g, '\\$&');
    }
  }
  return new RegExp(`${out}$`);
}

export class DockerIgnore {
  private readonly rules: Rule[];

  constructor(text: string) {
    this.rules = [];
    for (const raw of text.split('\n')) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const exclusion = line.startsWith('!');
      if (exclusion) line = line.slice(1).trim();
      // Docker cleans each pattern (filepath.Clean) and ignores a leading slash.
      line = path.posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '');
      if (line === '' || line === '.') continue;
      this.rules.push({ text: line, exclusion, regex: globToRegExp(line), segments: line.split('/') });
    }
  }

  /** True when `relPath` (a path relative to the context, with `/`) stays out of the context. */
  ignores(relPath: string): boolean {
    const parents = relPath.split('/').slice(0, -1);
    let ignored = false;
    for (const rule of this.rules) {
      // An exclusion only matters for a path ignored so far, an ignore line only for one not ignored.
      if (rule.exclusion !== ignored) continue;
      let match = rule.regex.test(relPath);
      for (let i = 1; !match && i <= parents.length; i++) match = rule.regex.test(parents.slice(0, i).join('/'));
      if (match) ignored = !rule.exclusion;
    }
    return ignored;
  }

  /** Whether an ignored directory may still hold a re-included path (then it must be walked). */
  mayReinclude(dirRelPath: string): boolean {
    const dirSegments = dirRelPath.split('/');
    return this.rules.some((rule) => {
      if (!rule.exclusion) return false;
      for (let i = 0; i < dirSegments.length; i++) {
        const segment = rule.segments[i];
        if (segment === undefined) return false;
        if (segment.includes('**')) return true;
        if (!globToRegExp(segment).test(dirSegments[i]!)) return false;
      }
      return rule.segments.length > dirSegments.length;
    });
  }
}

/** Copies `contextDir` into `targetDir` as `docker build` would send it; returns the files copied (relative, sorted). */
export async function copyBuildContext(contextDir: string, targetDir: string): Promise<string[]> {
  const ignoreFile = path.join(contextDir, '.dockerignore');
  const rules = new DockerIgnore(await readFile(ignoreFile, 'utf8').catch(() => ''));
  const copied: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(contextDir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!rules.ignores(childRel) || rules.mayReinclude(childRel)) await walk(childRel);
      } else if (!rules.ignores(childRel)) {
        const target = path.join(targetDir, childRel);
        await mkdir(path.dirname(target), { recursive: true });
        await copyFile(path.join(contextDir, childRel), target);
        copied.push(childRel);
      }
    }
  };
  await walk('');
  return copied.sort();
}
