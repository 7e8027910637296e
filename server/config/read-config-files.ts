import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { problem } from './document-shape.js';
import type { ConfigProblem } from './types.js';

const CONFIG_EXTENSIONS: readonly string[] = ['.json', '.yaml', '.yml'];

export interface ParsedFile {
  readonly file: string;
  /** The parsed document, unchecked. */
  readonly document: unknown;
}

/**
 * Expands each path (a file, or a directory's .json/.yaml/.yml files sorted by name), reads and
 * parses every file, and reports each path or file that fails, continuing with the rest.
 */
export async function readConfigFiles(paths: readonly string[]): Promise<{ files: ParsedFile[]; problems: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  const files: ParsedFile[] = [];
  // A file named twice (a directory and one of its files) would otherwise clash with itself.
  const seen = new Set<string>();
  for (const given of paths) {
    for (const file of await expandPath(given, problems)) {
      const key = path.resolve(file);
      if (seen.has(key)) continue;
      seen.add(key);
      const parsed = await readAndParse(file, problems);
      if (parsed !== undefined) files.push(parsed);
    }
  }
  return { files, problems };
}

async function expandPath(given: string, problems: ConfigProblem[]): Promise<string[]> {
  try {
    const stats = await stat(given);
    if (stats.isFile()) return [given];
    if (!stats.isDirectory()) {
      problems.push(problem(given, undefined, undefined, 'is neither a file nor a directory'));
      return [];
    }
    // Entries that are not directories include symlinks, which is how Kubernetes mounts a ConfigMap's files.
    const names = (await readdir(given, { withFileTypes: true }))
      .filter((entry) => !entry.isDirectory() && CONFIG_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()))
      .map((entry) => entry.name)
      .sort();
    if (names.length === 0) problems.push(problem(given, undefined, undefined, `directory has no ${CONFIG_EXTENSIONS.join(', ')} file`));
    return names.map((name) => path.join(given, name));
  } catch (error) {
    problems.push(problem(given, undefined, undefined, describeFsError(error)));
    return [];
  }
}

async function readAndParse(file: string, problems: ConfigProblem[]): Promise<ParsedFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    problems.push(problem(file, undefined, undefined, `cannot read: ${describeFsError(error)}`));
    return undefined;
  }
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  // Anything not named .yaml/.yml is JSON, the original project's format.
  const extension = path.extname(file).toLowerCase();
  return extension === '.yaml' || extension === '.yml' ? parseYaml(text, file, problems) : parseJson(text, file, problems);
}

function parseJson(text: string, file: string, problems: ConfigProblem[]): ParsedFile | undefined {
  try {
    return { file, document: JSON.parse(text) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // V8 gives an offset ("… in JSON at position 42"); people need a line and a column.
    const located = /^(.*?) in JSON at position (\d+)/.exec(reason);
    const offset = located?.[2] !== undefined ? Number(located[2]) : reason.startsWith('Unexpected end of JSON input') ? text.length : undefined;
    const where = offset === undefined ? '' : ` at ${lineAndColumn(text, offset)}`;
    problems.push(problem(file, undefined, undefined, `invalid JSON${where}: ${located?.[1] ?? reason}`));
    return undefined;
  }
}

function parseYaml(text: string, file: string, problems: ConfigProblem[]): ParsedFile | undefined {
  const lineCounter = new LineCounter();
  // prettyErrors off: the position goes into our own message, without the source excerpt.
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    for (const error of document.errors) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      problems.push(problem(file, undefined, undefined, `invalid YAML at line ${line}, column ${col}: ${error.message}`));
    }
    return undefined;
  }
  try {
    return { file, document: document.toJS() };
  } catch (error) {
    // toJS throws on alias bombs (too many aliases), which parse alone does not catch.
    problems.push(problem(file, undefined, undefined, `invalid YAML: ${error instanceof Error ? error.message : String(error)}`));
    return undefined;
  }
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${column}`;
}

function describeFsError(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return error instanceof Error ? error.message : String(error);
}
