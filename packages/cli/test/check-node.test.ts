// Issue 15 item 6: the Node-version check that npm scripts run first is plain JavaScript, so on the old Node it
// guards against (Node 20 after `npm ci --ignore-scripts`) it prints one line instead of a TypeScript stack trace.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('scripts/check-node.mjs', () => {
  const check = join(ROOT, 'scripts', 'check-node.mjs');

  it('passes on the project\'s Node', () => {
    expect(run(process.execPath, [check]).code).toBe(0);
  });

  it('on an older Node (the system node, if it is one): one clear line and exit 1, no stack trace', () => {
    const sys = ['/usr/bin/node', '/usr/local/bin/node'].map((p) => ({ p, v: run(p, ['-p', 'process.versions.node']) })).find((x) => x.v.code === 0 && Number(x.v.stdout.split('.')[0]) < 22);
    if (!sys) return; // no Node older than 22 installed here: nothing to run it on
    const r = run(sys.p, [check]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^fedtwin needs Node >= 22, this is v\d+.*npm ci/);
    expect(r.stderr).not.toMatch(/\n\s+at |ERR_UNKNOWN_FILE_EXTENSION/);
  });

  it('the package scripts call the .mjs check (the .ts one cannot run on the Node it guards against)', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const name of ['test', 'sim', 'bench', 'fedtwin']) expect(scripts[name], name).toMatch(/^node scripts\/check-node\.mjs && /);
    expect(JSON.stringify(scripts)).not.toMatch(/check-node\.ts/);
  });
});
