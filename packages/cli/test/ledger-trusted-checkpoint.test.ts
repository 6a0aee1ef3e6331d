// `fedtwin ledger verify --trusted-checkpoint FILE`: truncation or rollback detected offline (issue 12 item 5).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, openLedger } from '@fedtwin/ledger';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const ORIGIN = 'fedtwin.test/cli-trusted';
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

let root: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fedtwin-ledger-trusted-'));
  const aggKey = await generateKeyPairFromSeed('Ed25519', createHash('sha256').update('cli-trusted-0').digest());
  const agg = createEntrySigner(aggKey, ORIGIN);
  const note = createNoteSigner(ORIGIN, aggKey);
  const build = async (dir: string, rounds: number) => {
    const l = await openLedger({ dir });
    for (let round = 0; round < rounds; round++) {
      await l.append(await createEntry({ type: 'round', action: 'open', round, config: { lr: 0.01 } }, agg));
      await l.signCheckpoint(note);
    }
    const latest = (await l.latestCheckpoint())!.note;
    await l.close();
    return latest;
  };
  const full = await build(join(root, 'full'), 5);
  writeFileSync(join(root, 'trusted.note'), full);
  await build(join(root, 'rolled'), 3); // the same log, rolled back to 3 entries
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fedtwin ledger verify --trusted-checkpoint', () => {
  it('passes on a ledger that reaches the trusted checkpoint consistently', () => {
    const r = run(['ledger', 'verify', '--dir', join(root, 'full'), '--trusted-checkpoint', join(root, 'trusted.note')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('consistent with checkpoint 5');
  });

  it('attack: a rolled-back copy that verifies on its own fails against the trusted checkpoint (exit 1, LEDGER_INCONSISTENT)', () => {
    expect(run(['ledger', 'verify', '--dir', join(root, 'rolled')]).code).toBe(0);
    const r = run(['ledger', 'verify', '--dir', join(root, 'rolled'), '--trusted-checkpoint', join(root, 'trusted.note'), '--json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; code: string; checkpointSize: number; message: string };
    expect(out).toMatchObject({ ok: false, code: 'LEDGER_INCONSISTENT', checkpointSize: 5 });
    expect(out.message).toMatch(/truncated or rolled back/);
  });

  it('an unreadable file is a usage error naming it', () => {
    const r = run(['ledger', 'verify', '--dir', join(root, 'full'), '--trusted-checkpoint', join(root, 'missing.note')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('missing.note');
  });
});
