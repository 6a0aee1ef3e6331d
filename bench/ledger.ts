// Ledger benchmark: `node bench/ledger.ts [--entries N] [--single N] [--batch N] [--dir DIR] [--keep]`
//
// Prints, from one run on this machine:
//   - appends/s with one synced batch per entry beside appendMany batches (target >= 5,000/s batched)
//   - node reads per inclusion / consistency proof at growing sizes beside log2(n) (target: O(log n))
//   - verifyLedgerDir on an N-entry ledger (default 1,000,000; target < 60 s)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import {
  createEntry,
  createEntrySigner,
  createNoteSigner,
  openLedger,
  verifyLedgerDir,
  type EntrySigner,
  type LedgerEntry,
  type Ledger,
} from '@fedtwin/ledger';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    single: { type: 'string', default: '300' },
    batch: { type: 'string', default: '1000' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(args.entries);
const SINGLE = Number(args.single);
const BATCH = Number(args.batch);
if (![N, SINGLE, BATCH].every((x) => Number.isSafeInteger(x) && x > 0)) {
  console.error('usage: node bench/ledger.ts [--entries N] [--single N] [--batch N] [--dir DIR] [--keep]');
  process.exit(2);
}

const ORIGIN = 'fedtwin.bench/ledger';
const seed = (s: string) => createHash('sha256').update(s).digest();
const aggKey = await generateKeyPairFromSeed('Ed25519', seed('bench-aggregator'));
const agg = createEntrySigner(aggKey, ORIGIN);
const aggNote = createNoteSigner(ORIGIN, aggKey);
const nodes: EntrySigner[] = [];
for (let k = 0; k < 10; k++) nodes.push(createEntrySigner(await generateKeyPairFromSeed('Ed25519', seed(`bench-node-${k}`)), ORIGIN));
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** Entries [from, from+count) of a synthetic federation: per round, open + 10 contributions + aggregate. */
async function makeEntries(from: number, count: number): Promise<LedgerEntry[]> {
  const out: Promise<LedgerEntry>[] = [];
  for (let i = from; i < from + count; i++) {
    const round = Math.floor(i / 12);
    const slot = i % 12;
    if (slot === 0) out.push(createEntry({ type: 'round', action: 'open', round, config: { epochs: 1, lr: 0.01, clip: 1, noise: 1.1, quorum: 8 } }, agg));
    else if (slot === 11) {
      const contributions = Array.from({ length: 10 }, (_, k) => round * 12 + 1 + k);
      out.push(createEntry({ type: 'aggregate', round, contributions, aggregateHash: hex(`agg-${round}`), modelVersion: hex(`model-${round}`) }, agg));
    } else {
      const n = nodes[slot - 1];
      out.push(
        createEntry(
          {
            type: 'contribution',
            round,
            node: n.peerId,
            ciphertextHash: hex(`ct-${i}`),
            ciphertextSize: 7_600_000,
            sampleCount: 5000,
            epsilon: 0.01,
            delta: 1e-8,
            epsilonTotal: 0.01 * (round + 1),
            deltaTotal: 1e-8 * (round + 1),
            keyId: 'he-1',
          },
          n,
        ),
      );
    }
  }
  return Promise.all(out);
}

const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const root = args.dir ?? mkdtempSync(join(tmpdir(), 'fedtwin-bench-ledger-'));
console.log(`ledger benchmark — node ${process.version}, ${availableParallelism()} cores, dir ${root}`);

// 1. single vs batched appends, same run, same kind of entries (signed beforehand; signing rate shown apart)
{
  const t0 = performance.now();
  const pre = await makeEntries(0, SINGLE + 20 * BATCH);
  const signMs = performance.now() - t0;
  const l = await openLedger({ dir: join(root, 'appends') });
  let t = performance.now();
  for (let i = 0; i < SINGLE; i++) await l.append(pre[i]);
  const single = SINGLE / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let b = 0; b < 20; b++) await l.appendMany(pre.slice(SINGLE + b * BATCH, SINGLE + (b + 1) * BATCH));
  const batched = (20 * BATCH) / ((performance.now() - t) / 1000);
  // the aggregator's real path: envelope bytes off the wire, parsed + signature-checked inside appendMany
  const raw = (await makeEntries(SINGLE + 20 * BATCH, 20 * BATCH)).map((e) => Uint8Array.from(e.bytes));
  t = performance.now();
  for (let b = 0; b < 20; b++) await l.appendMany(raw.slice(b * BATCH, (b + 1) * BATCH));
  const batchedVerify = (20 * BATCH) / ((performance.now() - t) / 1000);
  await l.close();
  console.log('\nappends (each call = one atomic batch with sync: true)');
  console.log(`  single append()            ${fmt(single).padStart(9)} entries/s  (${SINGLE} calls)`);
  console.log(`  appendMany(${BATCH})         ${fmt(batched).padStart(9)} entries/s  (${20 * BATCH} entries, ${fmt(batched / single, 1)}x single)  target >= 5,000/s`);
  console.log(`  appendMany(${BATCH}) bytes   ${fmt(batchedVerify).padStart(9)} entries/s  (parse + Ed25519 verify inside the append)`);
  console.log(`  entry creation (sign)      ${fmt(pre.length / (signMs / 1000)).padStart(9)} entries/s`);
}

// 2. the N-entry ledger: build, proof read counts, verify
const bigDir = join(root, 'big');
let big: Ledger = await openLedger({ dir: bigDir });
{
  const t = performance.now();
  const CH = 10_000;
  const marks = new Set<number>();
  for (let s = 1024; s < N; s *= 4) marks.add(s);
  for (let from = big.size; from < N; ) {
    const next = Math.min(N, from + CH, ...[...marks].filter((m) => m > from));
    await big.appendMany(await makeEntries(from, next - from));
    from = next;
    if (marks.has(from) || from === N) await big.signCheckpoint(aggNote);
    if (process.stdout.isTTY) process.stdout.write(`\r  building ${fmt(from)} / ${fmt(N)}`);
  }
  if (process.stdout.isTTY) process.stdout.write('\r');
  console.log(`\nbuilt a ${fmt(N)}-entry ledger in ${fmt((performance.now() - t) / 1000, 1)} s (signing + appendMany(10,000) + a checkpoint at 1,024·4^k)`);
}
{
  console.log('\nproof cost (stored-node reads; leaf hashes + perfect subtrees keyed by their last leaf)');
  console.log('  tree size     log2(n)  inclusion reads (max)  consistency reads (max)  root reads');
  for (let size = 16; size <= N; size = size * 8 > N && size !== N ? N : size * 8) {
    let inc = 0;
    let con = 0;
    for (let k = 0; k < 64; k++) {
      const i = Math.floor(((k + 0.5) / 64) * size);
      let before = big.stats.nodeReads;
      await big.inclusionProof(i, size);
      inc = Math.max(inc, big.stats.nodeReads - before);
      before = big.stats.nodeReads;
      await big.consistencyProof(Math.max(1, i), size);
      con = Math.max(con, big.stats.nodeReads - before);
    }
    const before = big.stats.nodeReads;
    await big.root(size);
    const rootReads = big.stats.nodeReads - before;
    console.log(`  ${fmt(size).padStart(10)}  ${fmt(Math.log2(size), 1).padStart(8)}  ${String(inc).padStart(21)}  ${String(con).padStart(23)}  ${String(rootReads).padStart(10)}`);
    if (size === N) break;
  }
}
await big.close();
{
  const t = performance.now();
  const r = await verifyLedgerDir(bigDir);
  const s = (performance.now() - t) / 1000;
  if (!r.ok) {
    console.error(`verify FAILED: ${r.code} at ${r.index}: ${r.message}`);
    process.exitCode = 1;
  } else {
    console.log(
      `\nverifyLedgerDir on ${fmt(r.summary.entries)} entries: ${fmt(s, 1)} s (${fmt(r.summary.entries / s)} entries/s; ${r.summary.checkpoints} checkpoints, ${r.summary.rounds} rounds; Ed25519 by ${r.summary.signatureImpl})  target < 60 s`,
    );
  }
}
if (!args.keep && !args.dir) rmSync(root, { recursive: true, force: true });
