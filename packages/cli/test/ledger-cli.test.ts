// Spawns the real `fedtwin` entry point (node packages/cli/src/bin.ts) for the `ledger` commands.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Level } from 'level';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, openLedger, hashLeaf, parseCheckpoint, toHex, verifyInclusion, fromHex } from '@fedtwin/ledger';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const ORIGIN = 'fedtwin.test/cli';

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let root: string;
let dir: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fedtwin-ledger-cli-'));
  dir = join(root, 'ledger');
  const key = async (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`cli-${n}`).digest());
  const aggKey = await key(0);
  const agg = createEntrySigner(aggKey, ORIGIN);
  const note = createNoteSigner(ORIGIN, aggKey);
  const nodes = [createEntrySigner(await key(1), ORIGIN), createEntrySigner(await key(2), ORIGIN)];
  const l = await openLedger({ dir });
  for (const n of nodes) await l.append(await createEntry({ type: 'membership', action: 'admit', peerId: n.peerId }, agg));
  for (let round = 0; round < 3; round++) {
    await l.append(await createEntry({ type: 'round', action: 'open', round, config: { lr: 0.01 } }, agg));
    const idx: number[] = [];
    for (const [k, n] of nodes.entries()) {
      const e = await createEntry(
        { type: 'contribution', round, node: n.peerId, ciphertextHash: toHex(hashLeaf(new Uint8Array([round, k]))), ciphertextSize: 1000, epsilon: 0.5, delta: 1e-6, epsilonTotal: 0.5 * (round + 1), deltaTotal: 1e-6 * (round + 1), keyId: 'k1' },
        n,
      );
      idx.push((await l.append(e)).index);
    }
    await l.append(await createEntry({ type: 'aggregate', round, contributions: idx, aggregateHash: toHex(hashLeaf(new Uint8Array([round]))), modelVersion: toHex(hashLeaf(new Uint8Array([9, round]))) }, agg));
    await l.signCheckpoint(note);
  }
  await l.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fedtwin ledger', () => {
  it('verify: exit 0 with the summary; --json gives the same figures', () => {
    const r = run(['ledger', 'verify', '--dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ledger OK/);
    expect(r.stdout).toMatch(/entries\s+14/);
    expect(r.stdout).toMatch(/rounds\s+3/);
    const j = run(['ledger', 'verify', '--dir', dir, '--json']);
    expect(j.code).toBe(0);
    const s = JSON.parse(j.stdout) as { ok: boolean; entries: number; rounds: number; rootHash: string; epsilonPerNode: Record<string, number>; contributionsPerNode: Record<string, number> };
    expect(s).toMatchObject({ ok: true, entries: 14, rounds: 3 });
    expect(Object.values(s.epsilonPerNode)).toEqual([1.5, 1.5]);
    expect(Object.values(s.contributionsPerNode)).toEqual([3, 3]);
    expect(r.stdout).toContain(s.rootHash);
  });

  it('verify: exit 1 naming the first bad index when one stored byte is flipped', async () => {
    const bad = join(root, 'bad');
    cpSync(dir, bad, { recursive: true });
    const db = new Level<Uint8Array, Uint8Array>(bad, { keyEncoding: 'view', valueEncoding: 'view' });
    const e = db.sublevel<Uint8Array, Uint8Array>('e', { keyEncoding: 'view', valueEncoding: 'view' });
    const key = new Uint8Array(8);
    key[7] = 7; // a contribution
    const v = Uint8Array.from((await e.get(key))!);
    const pos = Buffer.from(v).indexOf('"keyId":"k1"') + 10;
    v[pos] = 0x32; // k1 -> k2
    await e.put(key, v);
    await db.close();
    const r = run(['ledger', 'verify', '--dir', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/entry 7: leaf hash/);
    const j = run(['ledger', 'verify', '--dir', bad, '--json']);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, index: 7, code: 'LEDGER_LEAF_HASH_MISMATCH' });
  });

  it('export --json: one object per entry with exact leaf data, then the checkpoint', () => {
    const r = run(['ledger', 'export', '--dir', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const arr = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(arr).toHaveLength(15);
    for (const [i, o] of arr.slice(0, 14).entries()) {
      expect(o.index).toBe(i);
      expect(typeof o.author).toBe('string');
      expect(toHex(hashLeaf(Buffer.from(o.data as string, 'base64')))).toBe(o.leafHash);
      expect((o.payload as { type: string }).type).toBe(o.type);
    }
    const cp = parseCheckpoint((arr[14] as { checkpoint: string }).checkpoint).checkpoint;
    expect(cp).toMatchObject({ origin: ORIGIN, size: 14 });
  });

  it('proof --json verifies against the signed root; a bad index exits 2', () => {
    const r = run(['ledger', 'proof', '--dir', dir, '--index', '3', '--size', '10', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as { index: number; size: number; leafHash: string; rootHash: string; proof: string[]; checkpoint: { rootMatches: boolean } };
    expect(p).toMatchObject({ index: 3, size: 10, checkpoint: { rootMatches: true } });
    verifyInclusion(3, 10, fromHex(p.leafHash), p.proof.map((h) => fromHex(h)), fromHex(p.rootHash));
    expect(run(['ledger', 'proof', '--dir', dir, '--index', '99']).code).toBe(2);
  });

  it('a locked directory: exit 1, says to stop the daemon or use a copy', async () => {
    const l = await openLedger({ dir });
    try {
      const r = run(['ledger', 'verify', '--dir', dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/LEDGER_LOCKED/);
      expect(r.stderr).toMatch(/stop the daemon|copy the directory/);
    } finally {
      await l.close();
    }
  });
});
