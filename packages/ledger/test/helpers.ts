// Shared test fixtures: deterministic keys, temp dirs, a small realistic ledger.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { createEntrySigner, createNoteSigner, createEntry, type EntrySigner, type NoteSigner, type LedgerEntry, type Ledger } from '../src/index.ts';

export const ORIGIN = 'fedtwin.test/consortium-1';

export async function keyFromSeed(n: number) {
  return generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`fedtwin-ledger-test-${n}`).digest());
}

export interface Party {
  entry: EntrySigner;
  note: NoteSigner;
  peerId: string;
}

/** A party with its entry signer and a note signer named `name` (default: its peer ID). */
export async function party(n: number, name?: string): Promise<Party> {
  const k = await keyFromSeed(n);
  const entry = createEntrySigner(k, ORIGIN);
  return { entry, note: createNoteSigner(name ?? entry.peerId, k), peerId: entry.peerId };
}

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `fedtwin-ledger-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** One realistic round: admit nodes, open round, contributions, a refusal, an aggregate. */
export async function roundEntries(aggr: Party, nodes: Party[], round: number, firstIndex: number, admit = true): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  if (admit) for (const n of nodes) out.push(await createEntry({ type: 'membership', action: 'admit', peerId: n.peerId }, aggr.entry));
  out.push(await createEntry({ type: 'round', action: 'open', round, config: { epochs: 1, lr: 0.01, clip: 1, noise: 1.1, quorum: nodes.length - 1 } }, aggr.entry));
  const contribIdx: number[] = [];
  for (const [k, n] of nodes.entries()) {
    if (k === nodes.length - 1) {
      out.push(await createEntry({ type: 'refusal', round, node: n.peerId, reason: 'privacy budget exhausted', epsilonRemaining: 0.1, epsilonRequired: 0.5 }, n.entry));
      continue;
    }
    contribIdx.push(firstIndex + out.length);
    out.push(
      await createEntry(
        {
          type: 'contribution',
          round,
          node: n.peerId,
          ciphertextHash: hex(`ct-${round}-${k}`),
          ciphertextSize: 123_456 + k,
          sampleCount: 1000 + k,
          epsilon: 0.5,
          delta: 1e-6,
          epsilonTotal: 0.5 * (round + 1),
          deltaTotal: 1e-6 * (round + 1),
          keyId: 'he-key-1',
        },
        n.entry,
      ),
    );
  }
  out.push(await createEntry({ type: 'aggregate', round, contributions: contribIdx, aggregateHash: hex(`agg-${round}`), modelVersion: hex(`model-${round}`) }, aggr.entry));
  return out;
}

/** Appends `rounds` rounds, signing a checkpoint after each. */
export async function fillLedger(ledger: Ledger, aggr: Party, nodes: Party[], rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    await ledger.appendMany(await roundEntries(aggr, nodes, r, ledger.size, r === 0));
    await ledger.signCheckpoint(aggr.note);
  }
}
