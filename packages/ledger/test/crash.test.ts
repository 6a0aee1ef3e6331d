// Crash safety: a child process appends in a loop and is killed with SIGKILL at arbitrary points.
// After each kill the directory must reopen with every acknowledged entry, no partial entry, no gap,
// and pass the full offline verification; a new writer then continues from there.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openLedger, verifyLedgerDir } from '../src/index.ts';
import { tempDir } from './helpers.ts';

const child = fileURLToPath(new URL('./fixtures/append-loop.ts', import.meta.url));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Runs the appender until it has acknowledged `acks` writes, then SIGKILLs it. Returns the last acked size. */
function runAndKill(dir: string, acks: number): Promise<{ opened: number; acked: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let err = '';
    let seen = 0;
    let acked = -1;
    let opened = -1;
    let killed = false;
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [what, n] = line.split(' ');
        if (what === 'open') opened = Number(n);
        if (what === 'acked') {
          acked = Number(n);
          if (++seen >= acks && !killed) {
            killed = true;
            p.kill('SIGKILL');
          }
        }
      }
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ opened, acked });
      else reject(new Error(`appender exited with ${code}: ${err}`));
    });
  });
}

describe('kill -9 while appending', () => {
  it('keeps every acknowledged entry, no partial entry and no gap, across repeated crashes', async () => {
    const t = tempDir('crash');
    cleanups.push(t.cleanup);
    let lastAcked = 0;
    for (const acks of [3, 17, 41, 8]) {
      const { opened, acked } = await runAndKill(t.dir, acks);
      expect(opened).toBeGreaterThanOrEqual(lastAcked); // the new writer resumed from everything acknowledged before
      const r = await verifyLedgerDir(t.dir);
      if (!r.ok) throw new Error(`verify failed after kill: ${r.code} at ${r.index}: ${r.message}`);
      expect(r.summary.entries).toBeGreaterThanOrEqual(acked);
      const l = await openLedger({ dir: t.dir, readOnly: true });
      expect(l.size).toBe(r.summary.entries);
      expect(r.summary.rootHash).toBe(Buffer.from(l.rootHash).toString('hex'));
      await l.close();
      lastAcked = acked;
    }
  });
});
