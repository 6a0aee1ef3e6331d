// The cosign endpoint (issue 12 item 5): the aggregator merges only the sender's own C2SP cosignature/v1
// line, verified with the key inside the sender's peer ID; whatever else the sender supplies is ignored.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import {
  cosignNote, createCosignatureSigner, createEntrySigner, createNoteSigner, MAX_NOTE_SIGNATURES, parseNote, verifyLedgerDir,
} from '@fedtwin/ledger';
import { openAuditLog, type AuditLog } from '../src/audit.ts';

const key = (n: number) => generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`cosign-test-${n}`).digest());

describe('AuditLog.cosign', () => {
  const dirs: string[] = [];
  const logs: AuditLog[] = [];
  afterEach(async () => {
    for (const l of logs.splice(0)) await l.close().catch(() => undefined);
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-cosign-'));
    dirs.push(dir);
    const [aggKey, aKey, bKey] = [await key(0), await key(1), await key(2)];
    const a = createEntrySigner(aKey, 'fedtwin/cosign-test').peerId;
    const b = createEntrySigner(bKey, 'fedtwin/cosign-test').peerId;
    const audit = await openAuditLog({ dir: join(dir, 'ledger'), identity: aggKey, consortium: 'cosign-test', members: [a, b] });
    logs.push(audit);
    const note = (await audit.latestCheckpoint())!.note;
    return { dir, audit, note, a, b, aKey, bKey };
  }

  it('merges the sender\'s own cosignature/v1 line', async () => {
    const { audit, note, a, aKey } = await setup();
    expect(await audit.cosign(cosignNote(note, createCosignatureSigner(a, aKey)), a)).toBe(1);
    // again: idempotent
    expect(await audit.cosign(cosignNote(note, createCosignatureSigner(a, aKey)), a)).toBe(1);
    const stored = (await audit.latestCheckpoint())!.note;
    expect(parseNote(stored).signatures.map((s) => s.name)).toEqual(['fedtwin/cosign-test', a]);
  });

  it("attack: one member pushing the note to 100 lines (30 other keys' cosignatures, junk lines) gets only its own line merged; the note stays verifiable", async () => {
    const { dir, audit, note, a, aKey } = await setup();
    let stuffed = note;
    for (let k = 0; k < 30; k++) {
      const fake = await key(100 + k);
      const fakeId = createEntrySigner(fake, 'fedtwin/cosign-test').peerId;
      stuffed = cosignNote(stuffed, createCosignatureSigner(fakeId, fake));
    }
    // lines under other names with garbage signatures, up to the parser's cap
    const lines = parseNote(stuffed).signatures.map((s) => s.line);
    while (lines.length < MAX_NOTE_SIGNATURES - 1) lines.push(`— junk-${lines.length} ${Buffer.alloc(76, lines.length).toString('base64')}`);
    stuffed = `${parseNote(note).text}\n${lines.join('\n')}\n`;
    stuffed = cosignNote(stuffed, createCosignatureSigner(a, aKey));
    expect(parseNote(stuffed).signatures.length).toBe(MAX_NOTE_SIGNATURES);
    expect(await audit.cosign(stuffed, a)).toBe(1);
    const stored = (await audit.latestCheckpoint())!.note;
    expect(parseNote(stored).signatures.length).toBe(2);
    await audit.close();
    logs.length = 0;
    const v = await verifyLedgerDir(join(dir, 'ledger'));
    expect(v.ok).toBe(true);
  });

  it('attack: another member\'s genuine line, presented by a sender without its own, is refused and not merged', async () => {
    const { audit, note, a, b, bKey } = await setup();
    const byB = cosignNote(note, createCosignatureSigner(b, bKey));
    await expect(audit.cosign(byB, a)).rejects.toMatchObject({ code: 'AGG_BAD_COSIGNATURE' });
    expect(parseNote((await audit.latestCheckpoint())!.note).signatures.length).toBe(1);
  });

  it('a line under the sender\'s name signed by another key, a plain signed-note (0x01) line, and a note over another text are refused', async () => {
    const { audit, note, a, aKey, bKey } = await setup();
    await expect(audit.cosign(cosignNote(note, createCosignatureSigner(a, bKey)), a)).rejects.toMatchObject({ code: 'AGG_BAD_COSIGNATURE' });
    await expect(audit.cosign(cosignNote(note, createNoteSigner(a, aKey)), a)).rejects.toMatchObject({ code: 'AGG_BAD_COSIGNATURE' });
    const other = note.replace(/^(.*\n)(\d+)\n/, (_m, o: string, n: string) => `${o}${Number(n) + 1}\n`);
    await expect(audit.cosign(cosignNote(other, createCosignatureSigner(a, aKey)), a)).rejects.toMatchObject({ code: 'AGG_BAD_COSIGNATURE' });
    expect(parseNote((await audit.latestCheckpoint())!.note).signatures.length).toBe(1);
  });
});
