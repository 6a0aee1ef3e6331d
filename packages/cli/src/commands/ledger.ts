import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import type { LedgerSummary } from '@fedtwin/ledger';
import { auditSecagg } from '../secagg-audit.ts';
import { formatEpsilon } from '../format.ts';

// The ledger package (Level, workers) loads only when a ledger command runs.
const ledgerLib = () => import('@fedtwin/ledger');

// `fedtwin ledger verify|export|proof`: offline audit tools over a ledger directory. They open it read-only;
// Level allows one process per directory, so a running daemon's directory must be copied first.
// --json prints JSON on stdout only (errors and hints go to stderr).

interface DirOpts {
  dir: string;
  json?: boolean;
}

function intArg(flag: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(v) || v < min) {
    throw new FedtwinError('CLI_BAD_ARGUMENT', `${flag} must be an integer >= ${min}, got ${JSON.stringify(raw)}`, { hint: `e.g. ${flag} ${min}` });
  }
  return v;
}

/** Writes respecting back-pressure, so exporting a million entries does not buffer them all. */
async function write(s: string): Promise<void> {
  if (!process.stdout.write(s)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
}

function summaryText(dir: string, s: LedgerSummary): string {
  const lines = [
    `ledger OK: ${dir}`,
    `  entries         ${s.entries}  (${Object.entries(s.entriesByType)
      .filter(([, n]) => n > 0)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')})`,
    `  rounds          ${s.rounds}`,
    `  root            ${s.rootHash} (size ${s.entries})`,
    s.latestCheckpoint
      ? `  checkpoint      size ${s.latestCheckpoint.size}, origin ${s.latestCheckpoint.origin}, signatures: ${s.latestCheckpoint.signatures.join(', ')}`
      : '  checkpoint      none (no signed checkpoint yet)',
    `  uncheckpointed  ${s.uncheckpointedEntries}`,
    `  members         ${s.members.length}`,
    '  contributions per node (count, ε total, δ total):',
  ];
  const nodes = Object.keys(s.contributionsPerNode).sort();
  if (nodes.length === 0) lines.push('    (none)');
  for (const n of nodes) lines.push(`    ${n}  ${s.contributionsPerNode[n]}  ε ${formatEpsilon(s.epsilonPerNode[n])}  δ ${formatEpsilon(s.deltaPerNode[n])}`);
  if (s.trustedCheckpoints.length) lines.push(`  trusted         consistent with ${s.trustedCheckpoints.map((t) => `checkpoint ${t.size}`).join(', ')}`);
  if (s.unaggregatedCount > 0) {
    lines.push(`  warning: ${s.unaggregatedCount} contribution(s) no aggregate references (a failed or still open round):`);
    for (const c of s.unaggregatedContributions.slice(0, 20)) lines.push(`    entry ${c.index}  round ${c.round}  ${c.node}`);
    if (s.unaggregatedCount > 20) lines.push(`    … ${s.unaggregatedCount - 20} more (--json lists up to 1000)`);
  }
  const refusals = Object.keys(s.refusalsPerNode).sort();
  if (refusals.length) {
    lines.push('  refusals per node:');
    for (const n of refusals) lines.push(`    ${n}  ${s.refusalsPerNode[n]}`);
  }
  return lines.join('\n') + '\n';
}

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('Audit the contribution ledger (verify, export, proofs); works on a copy of a daemon directory');

  ledger
    .command('verify')
    .description('Recompute every leaf hash, check every signature, the tree against the signed checkpoints and their consistency')
    .requiredOption('--dir <dir>', 'ledger directory (Level)')
    .option('--trusted-key <vkey...>', 'C2SP verifier key(s) trusted to sign checkpoints (default: the key recorded in the ledger)')
    .option('--trusted-checkpoint <file...>', 'checkpoint note(s) trusted from outside the directory (e.g. one a member co-signed): the ledger must reach that size consistently, else it was truncated or rolled back')
    .option('--json', 'print one JSON object')
    .action(async (opts: DirOpts & { trustedKey?: string[]; trustedCheckpoint?: string[] }) => {
      const { hashLeaf, openLedger, parseCheckpoint, parseEntry, readEntryPayloads, toBase64, toHex, verifyLedgerDir } = await ledgerLib();
      void hashLeaf; void openLedger; void parseCheckpoint; void parseEntry; void toBase64; void toHex; void verifyLedgerDir;
      const trustedCheckpoints: string[] = [];
      for (const f of opts.trustedCheckpoint ?? []) {
        try {
          trustedCheckpoints.push(await readFile(f, 'utf8'));
        } catch (err) {
          throw new FedtwinError('CLI_BAD_ARGUMENT', `cannot read --trusted-checkpoint ${f}: ${(err as Error).message}`, { hint: 'a file holding a checkpoint note (e.g. from a member\'s <dataDir>/evidence/ or its ledger export)' });
        }
      }
      const r = await verifyLedgerDir(opts.dir, {
        ...(opts.trustedKey ? { trustedKeys: opts.trustedKey } : {}),
        ...(trustedCheckpoints.length ? { trustedCheckpoints } : {}),
      });
      // Secure aggregation by masking: replay every recorded recovery (secagg-audit.ts) once the log itself verifies.
      const secagg = r.ok && (r.summary.entriesByType['secagg-recovery'] ?? 0) > 0 ? await auditSecagg(await readEntryPayloads(opts.dir)) : undefined;
      if (opts.json) await write(JSON.stringify(r.ok ? { ok: true, ...r.summary, ...(secagg ? { secagg } : {}) } : { ...r, summary: r.summary }) + '\n');
      else if (r.ok) {
        await write(summaryText(opts.dir, r.summary));
        for (const x of secagg ?? []) await write(`  secagg round ${x.round}: ${x.survivors} survivor(s), ${x.dropped} dropped, ${x.reveals} reveal(s); ${x.reconstructed} secret(s) rebuilt from the revealed shares match their commitments and signed keys\n`);
      }
      if (!r.ok) {
        // r.message already names the first bad entry index or checkpoint size.
        if (!opts.json) await write(`ledger FAILED verification: ${r.message}\n`);
        throw new FedtwinError(r.code, `ledger verification failed: ${r.message}`, {
          hint: 'the directory was altered or damaged; compare with a replica (member nodes keep one) to recover',
          details: { index: r.index, checkpointSize: r.checkpointSize },
        });
      }
    });

  ledger
    .command('export')
    .description('Print every entry in index order, then the latest checkpoint')
    .requiredOption('--dir <dir>', 'ledger directory (Level)')
    .option('--json', 'a JSON array: one object per entry, last element { "checkpoint": <note text or null> }')
    .action(async (opts: DirOpts) => {
      const { hashLeaf, openLedger, parseCheckpoint, parseEntry, toBase64, toHex, verifyLedgerDir } = await ledgerLib();
      void hashLeaf; void openLedger; void parseCheckpoint; void parseEntry; void toBase64; void toHex; void verifyLedgerDir;
      const l = await openLedger({ dir: opts.dir, readOnly: true });
      try {
        const latest = await l.latestCheckpoint();
        if (opts.json) await write('[\n');
        for await (const { index, bytes } of l.iterateEntries()) {
          let decoded: { type: string | null; author: string | null; payload: unknown; error?: string };
          try {
            const e = parseEntry(bytes);
            decoded = { type: e.payload.type, author: e.author, payload: e.payload };
          } catch (err) {
            decoded = { type: null, author: null, payload: null, error: (err as Error).message };
          }
          const leafHash = toHex(hashLeaf(bytes));
          if (opts.json) {
            await write(JSON.stringify({ index, type: decoded.type, author: decoded.author, leafHash, data: toBase64(bytes), payload: decoded.payload, ...(decoded.error ? { error: decoded.error } : {}) }) + ',\n');
          } else {
            await write(`${index}\t${decoded.type ?? 'INVALID'}\t${decoded.author ?? '-'}\t${leafHash}\t${decoded.error ?? JSON.stringify(decoded.payload)}\n`);
          }
        }
        if (opts.json) await write(JSON.stringify({ checkpoint: latest?.note ?? null }) + '\n]\n');
        else await write(latest ? `\ncheckpoint (size ${latest.size}):\n${latest.note}` : '\nno checkpoint\n');
      } finally {
        await l.close();
      }
    });

  ledger
    .command('proof')
    .description('Inclusion proof (RFC 9162) for leaf --index in the tree of --size leaves (default: the whole ledger)')
    .requiredOption('--dir <dir>', 'ledger directory (Level)')
    .requiredOption('--index <i>', 'leaf index (0-based)')
    .option('--size <s>', 'tree size (default: current size)')
    .option('--json', 'print { index, size, leafHash, rootHash, proof: [hex...] }')
    .action(async (opts: DirOpts & { index: string; size?: string }) => {
      const { hashLeaf, openLedger, parseCheckpoint, parseEntry, toBase64, toHex, verifyLedgerDir } = await ledgerLib();
      void hashLeaf; void openLedger; void parseCheckpoint; void parseEntry; void toBase64; void toHex; void verifyLedgerDir;
      const index = intArg('--index', opts.index, 0) as number;
      const sizeArg = intArg('--size', opts.size, 1);
      const l = await openLedger({ dir: opts.dir, readOnly: true });
      try {
        const size = sizeArg ?? l.size;
        if (size > l.size) throw new FedtwinError('CLI_BAD_ARGUMENT', `--size ${size} exceeds the ledger's ${l.size} entries`);
        if (index >= size) throw new FedtwinError('CLI_BAD_ARGUMENT', `--index ${index} is not in a tree of size ${size}`, { hint: size ? `use 0..${size - 1}` : 'the ledger is empty' });
        const proof = (await l.inclusionProof(index, size)).map(toHex);
        const rootHash = toHex(await l.root(size));
        const leafHash = toHex(await l.leafHash(index));
        const cp = await l.checkpointAt(size);
        const checkpoint = cp ? { size, rootMatches: toHex(parseCheckpoint(cp).checkpoint.rootHash) === rootHash } : null;
        if (opts.json) await write(JSON.stringify({ index, size, leafHash, rootHash, proof, checkpoint }) + '\n');
        else {
          await write(`inclusion proof for leaf ${index} in tree of size ${size}\n  leaf hash ${leafHash}\n  root      ${rootHash}\n`);
          if (checkpoint) await write(`  signed checkpoint at this size: root ${checkpoint.rootMatches ? 'matches' : 'DOES NOT MATCH'}\n`);
          for (const [k, h] of proof.entries()) await write(`  ${String(k).padStart(2)} ${h}\n`);
        }
      } finally {
        await l.close();
      }
    });
}
