// Issue 15 item 6, how the CLI starts: a symlinked bin (npx, node_modules/.bin, npm link), paths relative to the
// caller's folder under `npm run`, --version and one-line usage errors.
// Every case spawns the real entry point (the sh bin or packages/cli/src/bin.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('..', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SH_BIN = join(CLI, 'bin', 'fedtwin');
const BIN = join(CLI, 'src', 'bin.ts');
const VERSION = (JSON.parse(readFileSync(join(CLI, 'package.json'), 'utf8')) as { version: string }).version;

const dir = mkdtempSync(join(tmpdir(), 'fedtwin-entry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
/** The environment without npm's variables (vitest may itself run under `npm test`). */
const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'INIT_CWD' && !k.startsWith('npm_')));

describe('the fedtwin bin through symlinks', () => {
  it('runs from a symlink in another folder (absolute and relative links, and a link to node_modules/.bin/fedtwin)', () => {
    const links = join(dir, 'links');
    mkdirSync(links);
    symlinkSync(SH_BIN, join(links, 'abs'));
    symlinkSync(relative(links, SH_BIN), join(links, 'rel'));
    // node_modules/.bin/fedtwin is itself a link (../fedtwin/bin/fedtwin, through the workspace link): a chain.
    symlinkSync(join(ROOT, 'node_modules', '.bin', 'fedtwin'), join(links, 'chain'));
    for (const name of ['abs', 'rel', 'chain']) {
      const r = run(join(links, name), ['--version'], { cwd: dir });
      expect(r.stderr, name).not.toMatch(/MODULE_NOT_FOUND|Cannot find module/);
      expect({ name, code: r.code, out: r.stdout.trim() }).toEqual({ name, code: 0, out: VERSION });
    }
  });

  it('npx fedtwin runs the CLI', () => {
    const r = run('npx', ['--no-install', 'fedtwin', '--version'], { cwd: ROOT, env: cleanEnv() });
    if (r.code === null && /ENOENT/.test(r.stderr)) return; // no npx on this machine: the link cases above cover the bin
    expect(r.stderr).not.toMatch(/MODULE_NOT_FOUND/);
    expect(r.stdout.trim()).toBe(VERSION);
  });
});

describe('paths relative to the folder the command was typed in', () => {
  const caller = join(dir, 'caller');
  mkdirSync(caller, { recursive: true });
  writeFileSync(join(caller, 'agg.yaml'), 'consortium: c.json\n');

  it('under npm (INIT_CWD and an npm script that runs bin.ts), a relative --config is read from INIT_CWD', () => {
    const env = { ...cleanEnv(), INIT_CWD: caller, npm_lifecycle_event: 'fedtwin', npm_lifecycle_script: 'node scripts/check-node.mjs && node packages/cli/src/bin.ts' };
    const r = run(process.execPath, [BIN, 'aggregator', 'start', '--config', 'agg.yaml'], { cwd: ROOT, env });
    // Found and parsed (the config is incomplete on purpose): not CONFIG_NOT_FOUND against the repo root.
    expect(r.stderr).toMatch(/error \[CONFIG_INVALID\]: agg\.yaml: field "dataDir": is missing/);
    expect(r.code).toBe(2);
  });

  it('without npm, the process folder stands (a test or script that spawns the CLI in its own folder)', () => {
    const env = { ...cleanEnv(), INIT_CWD: caller, npm_lifecycle_script: 'vitest run' };
    const r = run(process.execPath, [BIN, 'aggregator', 'start', '--config', 'agg.yaml'], { cwd: ROOT, env });
    expect(r.stderr).toMatch(/CONFIG_NOT_FOUND/);
  });

  it('for real: `npm run fedtwin` from another folder', () => {
    const r = run('npm', ['run', '--silent', '--prefix', ROOT, 'fedtwin', '--', 'aggregator', 'start', '--config', 'agg.yaml'], { cwd: caller, env: cleanEnv() });
    if (r.code === null && /ENOENT/.test(r.stderr)) return; // no npm on this machine: the case above sets what npm sets
    expect(r.stderr).toMatch(/error \[CONFIG_INVALID\]: agg\.yaml: field "dataDir": is missing/);
  });
});

describe('--version and usage errors', () => {
  it('--version and -V print the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = run(process.execPath, [BIN, flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
    }
  });

  /** commander's line, its "(Did you mean …?)" when it has one, and where the help is: nothing else. */
  const concise = (stderr: string, error: RegExp, help: string) => {
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(error);
    expect(lines.at(-1)).toBe(help);
    expect(lines.slice(1, -1).every((l) => /^\(Did you mean .*\?\)$/.test(l)), stderr).toBe(true);
    expect(stderr).not.toMatch(/Usage:|Options:/);
  };

  it('an unknown option: one error line and where the help is, not the whole help (exit 2)', () => {
    const r = run(process.execPath, [BIN, 'node', 'start', '--config', 'x.yaml', '--exit-when-don']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    concise(r.stderr, /^error: unknown option '--exit-when-don'/, 'see fedtwin node start --help');
    expect(r.stderr).toMatch(/Did you mean --exit-when-done\?/);
  });

  it('an unknown command and a missing required option say the same', () => {
    const a = run(process.execPath, [BIN, 'nodes']);
    expect(a.code).toBe(2);
    concise(a.stderr, /^error: unknown command 'nodes'/, 'see fedtwin --help');
    const b = run(process.execPath, [BIN, 'keys', 'generate']);
    expect(b.code).toBe(2);
    concise(b.stderr, /^error: required option '--out <file>' not specified/, 'see fedtwin keys generate --help');
  });
});
