// Issue 15: "ε printed as 7.999999999997287". People read 3 significant digits; --json keeps the full value
// (scripts and audits compare it). Spawns the real entry point for `ledger verify`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntry, createEntrySigner, createNoteSigner, hashLeaf, openLedger, toHex } from '@fedtwin/ledger';
import { formatEpsilon } from '../src/format.ts';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const ORIGIN = 'fedtwin.test/eps';
const LONG = 7.999999999997287;

describe('formatEpsilon', () => {
  it('3 significant digits rounded up (a printed bound never below the computed one), no trailing zeros; ∞ for no bound', () => {
    expect(formatEpsilon(LONG)).toBe('8');
    expect(formatEpsilon(7.2583)).toBe('7.26');
    expect(formatEpsilon(1.7117700912208242)).toBe('1.72');
    expect(formatEpsilon(7.2213)).toBe('7.23');
    expect(formatEpsilon(8)).toBe('8');
    expect(formatEpsilon(8.000000000001)).toBe('8');
    expect(formatEpsilon(9.9951)).toBe('10');
    expect(formatEpsilon(0.0012341)).toBe('0.00124');
    expect(formatEpsilon(0.30000000000000004)).toBe('0.3');
    expect(formatEpsilon(123.456)).toBe('124');
    expect(formatEpsilon(1e-5)).toBe('0.00001');
    expect(formatEpsilon(Infinity)).toBe('∞');
    expect(formatEpsilon(undefined)).toBe('—');
  });
});

let root: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fedtwin-eps-'));
  const key = (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`eps-${n}`).digest());
  const aggKey = await key(0);
  const agg = createEntrySigner(aggKey, ORIGIN);
  const member = createEntrySigner(await key(1), ORIGIN);
  const l = await openLedger({ dir: join(root, 'ledger') });
  await l.append(await createEntry({ type: 'membership', action: 'admit', peerId: member.peerId }, agg));
  await l.append(await createEntry({ type: 'round', action: 'open', round: 0, config: { lr: 0.01 } }, agg));
  const c = await l.append(await createEntry({ type: 'contribution', round: 0, node: member.peerId, ciphertextHash: toHex(hashLeaf(new Uint8Array([1]))), ciphertextSize: 10, epsilon: LONG, delta: 1e-5, epsilonTotal: LONG, deltaTotal: 1e-5, keyId: 'k1' }, member));
  await l.append(await createEntry({ type: 'aggregate', round: 0, contributions: [c.index], aggregateHash: toHex(hashLeaf(new Uint8Array([2]))), modelVersion: toHex(hashLeaf(new Uint8Array([3]))) }, agg));
  await l.signCheckpoint(createNoteSigner(ORIGIN, aggKey));
  await l.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ledger verify', () => {
  it('prints ε to 3 significant digits; --json keeps the full value', () => {
    const dir = join(root, 'ledger');
    const r = spawnSync(process.execPath, [BIN, 'ledger', 'verify', '--dir', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ 1 {2}ε 8 {2}δ 0\.00001\n/);
    expect(r.stdout).not.toContain('7.999');
    const j = spawnSync(process.execPath, [BIN, 'ledger', 'verify', '--dir', dir, '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(Object.values((JSON.parse(j.stdout) as { epsilonPerNode: Record<string, number> }).epsilonPerNode)).toEqual([LONG]);
  });
});
