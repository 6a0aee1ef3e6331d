// Issue 15 item 6: `fedtwin keys show --in FILE` prints an existing identity's peer ID, and `keys generate` warns
// when the key lands in a git work tree that does not ignore it. Spawns the real entry point.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { generateIdentity, peerIdOf, saveIdentity } from '@fedtwin/wire';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const run = (args: string[], cwd?: string) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, ...(cwd ? { cwd } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' });
const hasGit = git(tmpdir(), '--version').status === 0;

const dir = mkdtempSync(join(tmpdir(), 'fedtwin-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fedtwin keys show --in', () => {
  it('prints the peer ID of an existing identity, and {"peerId","file"} with --json', async () => {
    const key = await generateIdentity();
    const file = join(dir, 'site.key');
    await saveIdentity(file, key);
    const r = run(['keys', 'show', '--in', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${peerIdOf(key)}\n`);
    const j = run(['keys', 'show', '--in', file, '--json']);
    expect(JSON.parse(j.stdout)).toEqual({ peerId: peerIdOf(key), file });
  });

  it('agrees with what keys generate printed', () => {
    const file = join(dir, 'gen.key');
    const g = run(['keys', 'generate', '--out', file]);
    expect(g.code, g.stderr).toBe(0);
    expect(run(['keys', 'show', '--in', file]).stdout).toBe(g.stdout);
  });

  it('a file that is not an identity: its code, and a hint toward --key for HE key files', () => {
    const file = join(dir, 'junk.key');
    writeFileSync(file, 'not a key', { mode: 0o600 });
    const r = run(['keys', 'show', '--in', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error \[WIRE_IDENTITY_CORRUPT\]/);
    expect(r.stderr).toMatch(/hint: .*--key/);
  });

  it('neither --in nor --key (or both): a usage error', () => {
    expect(run(['keys', 'show']).code).toBe(2);
    expect(run(['keys', 'show', '--in', 'a', '--key', 'b']).stderr).toMatch(/CLI_BAD_ARGUMENT/);
  });
});

describe.skipIf(!hasGit)('keys generate inside a git work tree', () => {
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  git(repo, 'init', '-q');

  it('warns when git would pick the key up, names the fix, and still writes it (exit 0)', () => {
    const r = run(['keys', 'generate', '--out', join(repo, 'keys', 'node.key')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^12D3KooW/);
    expect(r.stderr).toMatch(/^warning: .*node\.key is inside the git work tree .*repo and git does not ignore it: add "\*\.key" to .*\.gitignore/);
  });

  it('is quiet once *.key is ignored, and outside any work tree', () => {
    writeFileSync(join(repo, '.gitignore'), '*.key\n');
    const r = run(['keys', 'generate', '--out', join(repo, 'other.key')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const outside = mkdtempSync(join(tmpdir(), 'fedtwin-keys-nogit-'));
    try {
      const o = run(['keys', 'generate', '--out', join(outside, 'x.key')]);
      expect(o.code, o.stderr).toBe(0);
      expect(o.stderr).toBe('');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('this repository ignores *.key', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    expect(git(root, 'check-ignore', '-q', '--', 'somewhere/node.key').status).toBe(0);
  });
});
