// `fedtwin … | head`: the reader goes away after the first chunk; the CLI must stop quietly (exit 0),
// not die on EPIPE with a stack trace. Spawns the real entry point (node packages/cli/src/bin.ts).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, openLedger } from '@fedtwin/ledger';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** Runs the CLI with stdout read by a reader that closes its end after the first chunk, like `| head -c N`. */
function runIntoClosingReader(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string; firstChunk: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let firstChunk = 0;
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.stdout.once('data', (b: Buffer) => { firstChunk = b.length; child.stdout.destroy(); });
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal, stderr, firstChunk }); });
  });
}

let root: string;
let dir: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fedtwin-epipe-'));
  dir = join(root, 'ledger');
  const key = await generateKeyPairFromSeed('Ed25519', createHash('sha256').update('epipe').digest());
  const ORIGIN = 'fedtwin.test/epipe';
  const signer = createEntrySigner(key, ORIGIN);
  const l = await openLedger({ dir });
  // ~1,500 entries print well over a pipe buffer (64 KiB), so the CLI is still writing when the reader leaves.
  for (let round = 0; round < 1500; round++) {
    await l.append(await createEntry({ type: 'round', action: 'open', round, config: { lr: 0.01, note: 'x'.repeat(64) } }, signer));
  }
  await l.signCheckpoint(createNoteSigner(ORIGIN, key));
  await l.close();
}, 60_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('stdout closed early (EPIPE)', () => {
  it('ledger export into a reader that leaves after the first chunk: exit 0, no stack trace', async () => {
    for (const args of [['ledger', 'export', '--dir', dir], ['ledger', 'export', '--dir', dir, '--json']]) {
      const r = await runIntoClosingReader(args);
      expect(r.firstChunk).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
      expect(r.stderr).toBe('');
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    }
  });

  it('a complete export is unaffected', () => {
    const r = spawnSync(process.execPath, [BIN, 'ledger', 'export', '--dir', dir], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n').filter((l) => /^\d+\t/.test(l))).toHaveLength(1500);
  });
});

describe('keys generate', () => {
  it('writes the identity owner-only (0600), also when replacing one with --force', () => {
    const out = join(root, 'keys', 'node.key');
    for (const extra of [[], ['--force']]) {
      const r = spawnSync(process.execPath, [BIN, 'keys', 'generate', '--out', out, ...extra], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^12D3KooW/);
      expect(statSync(out).mode & 0o777).toBe(0o600);
    }
  });
});
