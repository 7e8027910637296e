/**
 * Reads a Dockerfile into stages and instructions, as far as our own needs go: enough to check it
 * (no hadolint here) and to replay its steps outside Docker. Handles comments, parser directives,
 * backslash continuations, `ARG` defaults in `FROM`, `--flags` on instructions and exec-form JSON.
 */
export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, ... */
  readonly keyword: string;
  /** `--name=value` flags at the start of the arguments (`--from=build`, `--mount=...`, `--interval=10s`). */
  readonly flags: ReadonlyMap<string, string>;
  /** The arguments after the flags, as written. */
  readonly args: string;
  /** The arguments as a JSON array when written in exec form, else null. */
  readonly exec: readonly string[] | null;
  readonly line: number;
}

export interface Stage {
  /** The image reference with ARG defaults substituted. */
  readonly from: string;
  readonly name: string | null;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

function parseExec(text: string): string[] | null {
  if (!text.startsWith('[')) return null;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : null;
  } catch {
    return null;
  }
}

function splitFlags(text: string): { flags: Map<string, string>; rest: string } {
  const flags = new Map<string, string>();
  let rest = text;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (m === null) break;
    flags.set(m[1]!, m[2] ?? '');
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

export function parseDockerfile(text: string): Dockerfile {
  const logical: { text: string; line: number }[] = [];
  let current: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comments (parser directives included) and blank lines are skipped, also inside a continuation,
    // as Docker does.
    if (trimmed.startsWith('#') || trimmed === '') return;
    const continued = trimmed.endsWith('\\');
    const body = continued ? trimmed.slice(0, -1).trimEnd() : trimmed;
    if (current === null) current = { text: body, line: index + 1 };
    else current.text += ` ${body}`;
    if (!continued) {
      logical.push(current);
      current = null;
    }
  });
  if (current !== null) logical.push(current);

  const globalArgs = new Map<string, string>();
  const stages: { from: string; name: string | null; instructions: Instruction[] }[] = [];
  for (const { text: lineText, line } of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(lineText);
    if (m === null) continue;
    const keyword = m[1]!.toUpperCase();
    const { flags, rest } = splitFlags(m[2]!);
    const instruction: Instruction = { keyword, flags, args: rest, exec: parseExec(rest), line };
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, value = ''] = rest.split('=', 2) as [string, string?];
      globalArgs.set(name.trim(), value.trim());
      continue;
    }
    if (keyword === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (fm === null) throw new Error(`Dockerfile line ${line}: cannot read FROM ${rest}`);
      const from = fm[1]!.replace(/\$\{?(\w+)\}?/g, (_, name: string) => {
        const value = globalArgs.get(name);
        if (value === undefined) throw new Error(`Dockerfile line ${line}: FROM uses ARG ${name}, which has no default`);
        return value;
      });
      stages.push({ from, name: fm[2] ?? null, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`Dockerfile line ${line}: ${keyword} before the first FROM`);
    stage.instructions.push(instruction);
  }
  return { globalArgs, stages };
}

/** `ENV a=b c=d` (or the old `ENV a b`) as pairs; `$VAR` and `${VAR}` expand from `env`. */
export function envPairs(args: string, env: Readonly<Record<string, string | undefined>>): [string, string][] {
  const expand = (value: string): string => value.replace(/\$\{?(\w+)\}?/g, (_, name: string) => env[name] ?? '');
  if (!/^\w+=/.test(args)) {
    const [name, ...value] = args.split(/\s+/);
    return [[name!, expand(value.join(' '))]];
  }
  return [...args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => {
    const raw = m[2]!;
    return [m[1]!, expand(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw)];
  });
}
