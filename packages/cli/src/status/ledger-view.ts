import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** What `fedtwin status` shows of an audit log (the aggregator's) or of a member's replica. */
export interface LedgerView {
  size: number;
  rootHash: string;
  /** The latest signed checkpoint and how many members co-signed it (the log's own signature not counted). */
  checkpoint: { size: number; cosignatures: number } | null;
}

/** From a checkpoint note: its size line and its signature lines beyond the log's own. */
export async function checkpointOf(note: string | null | undefined): Promise<LedgerView['checkpoint']> {
  if (!note) return null;
  const { parseCheckpoint } = await import('@fedtwin/ledger');
  const p = parseCheckpoint(note);
  return { size: p.checkpoint.size, cosignatures: Math.max(0, p.signatures.length - 1) };
}

/** Reads a ledger directory without writing to it (a stopped daemon's; a running one holds Level's lock). */
export async function readLedgerDir(dir: string): Promise<LedgerView | null> {
  // No CURRENT file: a directory created for a ledger that has not been written yet (a node's first start). Opening
  // it would leave Level's LOCK and LOG files in it.
  if (!existsSync(join(dir, 'CURRENT'))) return null;
  const { openLedger, toHex } = await import('@fedtwin/ledger');
  const l = await openLedger({ dir, readOnly: true });
  try {
    const latest = await l.latestCheckpoint();
    return { size: l.size, rootHash: toHex(l.rootHash), checkpoint: await checkpointOf(latest?.note) };
  } finally {
    await l.close();
  }
}
