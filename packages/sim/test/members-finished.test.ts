// Issue 15 item 5: the sim fails fast when a daemon exits — which daemon, its code, its last stderr lines —
// instead of waiting out its timeout on a federation that cannot finish. Real child processes.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { membersFinished, type Daemon } from '../src/processes.ts';

function proc(name: string, script: string): Daemon {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { name, child, exited, stderrTail: () => err.trim() };
}
const LONG = 'setTimeout(() => {}, 60000)';

describe('membersFinished', () => {
  it('rejects as soon as one member exits non-zero, naming it and its last stderr lines, while the others still run', async () => {
    const nodes = [proc('node 0', LONG), proc('node 1', 'setTimeout(() => { console.error("error [NODE_DIVERGED]: boom"); process.exit(3); }, 100)')];
    const agg = proc('aggregator', LONG);
    const t0 = Date.now();
    try {
      await expect(membersFinished(nodes, agg)).rejects.toThrow(/node 1 exited with code 3: error \[NODE_DIVERGED\]: boom/);
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(nodes[0]!.child.exitCode).toBeNull(); // not waited for
    } finally {
      for (const d of [...nodes, agg]) d.child.kill('SIGKILL');
    }
  });

  it('rejects when the aggregator dies while members run', async () => {
    const nodes = [proc('node 0', LONG)];
    const agg = proc('aggregator', 'setTimeout(() => { console.error("error [STATE_CORRUPT]: bad"); process.exit(1); }, 100)');
    try {
      await expect(membersFinished(nodes, agg)).rejects.toMatchObject({ code: 'SIM_DAEMON_FAILED', message: expect.stringMatching(/^aggregator exited with code 1: .*STATE_CORRUPT/) });
    } finally {
      for (const d of [...nodes, agg]) d.child.kill('SIGKILL');
    }
  });

  it('resolves when every member exits 0 (an aggregator leaving with 0 after the finish is fine)', async () => {
    const nodes = [proc('node 0', 'setTimeout(() => process.exit(0), 150)'), proc('node 1', 'setTimeout(() => process.exit(0), 50)')];
    const agg = proc('aggregator', 'setTimeout(() => process.exit(0), 10)');
    await expect(membersFinished(nodes, agg)).resolves.toBeUndefined();
  });
});
