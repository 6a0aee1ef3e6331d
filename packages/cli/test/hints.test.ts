// Issue 15: two hints named options that exist nowhere (--ignore-extra-columns, --clamp-out-of-range). A hint is
// what an operator types next: every --option a hint (or a *_HINT constant) in packages/*/src names must be an
// option of some fedtwin command, as commander defines them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/index.ts';

const PACKAGES = fileURLToPath(new URL('../..', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The text of every hint: `hint: …` and `…HINT = …`, with its continuation lines (`+ '…'`, `? … : …`). */
function hintTexts(source: string): string[] {
  const lines = source.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    const m = /\bhint\s*:|\b\w*HINT\s*=|\bconst hint\s*=/.exec(line);
    if (!m) return;
    let text = line.slice(m.index);
    for (let j = i + 1; j < lines.length && /^\s*[+?:]\s*[`'"]/.test(lines[j]!); j++) text += ` ${lines[j]!.trim()}`;
    out.push(text);
  });
  return out;
}

function options(cmd: Command, into = new Set<string>(['--help', '--version'])): Set<string> {
  for (const o of cmd.options) if (o.long) into.add(o.long);
  for (const sub of cmd.commands) options(sub, into);
  return into;
}

describe('hints name real options', () => {
  it('collects hints, continuation lines included (the collector itself)', () => {
    const src = "throw new FedtwinError('X', 'm', { hint: 'pass --foo' });\nconst H_HINT = 'use --bar'\n  hint: 'a '\n    + 'then --baz',\n";
    expect(hintTexts(src).join(' ')).toMatch(/--foo.*--bar.*--baz/);
  });

  it('every --option in a hint in packages/*/src is an option of a fedtwin command', () => {
    const known = options(buildProgram());
    const named: Array<{ file: string; option: string }> = [];
    for (const pkg of readdirSync(PACKAGES)) {
      const src = join(PACKAGES, pkg, 'src');
      if (!statSync(join(PACKAGES, pkg)).isDirectory() || !readdirSync(join(PACKAGES, pkg)).includes('src')) continue;
      for (const file of tsFiles(src)) {
        for (const hint of hintTexts(readFileSync(file, 'utf8'))) {
          for (const m of hint.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) named.push({ file: file.slice(PACKAGES.length), option: `--${m[1]}` });
        }
      }
    }
    expect(named.length).toBeGreaterThan(5); // the collector finds the hints that do name options
    expect(named.filter((n) => !known.has(n.option))).toEqual([]);
  });
});
