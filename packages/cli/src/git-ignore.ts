import { spawnSync } from 'node:child_process';
import { basename, dirname, resolve } from 'node:path';

/**
 * Whether git would pick `file` up: inside a work tree and not ignored. An identity is the member's secret
 * (whoever holds it speaks as the member); one `git add -A` would publish it with the repository.
 * `undefined` when git is not installed or the file is not in a work tree: nothing to warn about.
 */
export function unignoredInGitTree(file: string): { root: string } | undefined {
  const abs = resolve(file);
  const cwd = dirname(abs);
  const run = (args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8', timeout: 10_000 });
  const check = run(['check-ignore', '-q', '--', basename(abs)]);
  if (check.error || check.status !== 1) return undefined; // 0: ignored; 128: not a work tree (or git failed)
  const top = run(['rev-parse', '--show-toplevel']);
  if (top.error || top.status !== 0) return undefined;
  return { root: top.stdout.trim() };
}
