import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AggregatorStore } from '@fedtwin/aggregator';
import { readEntryPayloads, verifyLedgerDir, type EntryPayload } from '@fedtwin/ledger';
import { inferSchema, initBackend, loadDataset, toCsv, type TableSchema } from '@fedtwin/models';
import { bytesToF32 } from '@fedtwin/protocol';
import { DEFAULT_VALUE_BOUND } from '@fedtwin/secagg';
import { runInProcessFederation, type Event } from './helpers/in-process-federation.ts';

// Issue 16, the daemons: a real aggregator and real members (in-process, libp2p on loopback) run rounds under
// secure aggregation by pairwise masking (secureAggregation.scheme secagg). The published sum equals plaintext's
// within quantization; a member stopped after sharing its keys, or after sending its masked update, does not stop
// the round (dropout recovery), and the ledger shows the recovery request and the reveals; `ledger verify` passes.
const MEMBERS = 4;
const CLIP = 64;
const SCALE = DEFAULT_VALUE_BOUND / CLIP;
const privacy = { mode: 'off' as const };

let dir = '';
let schema: TableSchema;
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-secagg-fed-'));
  const ds = await loadDataset('breast_cancer_wdbc');
  schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  for (let i = 0; i < MEMBERS; i++) await writeFile(join(dir, `site-${i}.csv`), toCsv(ds.header, ds.rows.slice(60 * i, 60 * i + 60)));
});
afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });


async function aggregates(stateDir: string): Promise<Array<{ participants: string[]; encoding: string; body: Uint8Array }>> {
  const store = await AggregatorStore.open(stateDir);
  try {
    const out = [];
    for (const r of await store.listAggregates()) {
      const a = (await store.getAggregate(r.version))!;
      out.push({ participants: a.record.participants, encoding: a.record.encoding ?? 'f32le', body: a.body });
    }
    return out;
  } finally {
    await store.close();
  }
}

const int32Sum = (body: Uint8Array): Float64Array => {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return Float64Array.from({ length: body.length / 4 }, (_, i) => v.getInt32(i * 4, true) / SCALE);
};

const run = (sub: string, o: { secagg: boolean; kill?: (i: number, e: Event) => boolean; policy?: { quorum?: number; minParticipants?: number; deadlineSeconds?: number }; threshold?: number }) =>
  runInProcessFederation({
    dir: join(dir, sub), consortium: 'secagg', schema, members: MEMBERS, rounds: 1, batchSize: 16, privacy,
    secureAggregation: o.secagg ? { scheme: 'secagg', clip: CLIP, ...(o.threshold ? { threshold: o.threshold } : {}) } : { scheme: 'plaintext' },
    ...(o.policy ? { policy: o.policy } : {}), ...(o.kill ? { kill: o.kill } : {}),
    // the same CSVs for both runs (site-<i>.csv in the parent dir)
    node: (i) => ({ csvPath: join(dir, `site-${i}.csv`), allowPrivacyOff: true }),
  });

describe('secure aggregation by masking in the daemons', () => {
  it('publishes the same sum as plaintext within quantization, and the ledger records keys, shares, one request and the reveals', async () => {
    const plain = await run('plain', { secagg: false });
    const masked = await run('masked', { secagg: true });
    const [p] = await aggregates(plain.aggStateDir);
    const [m] = await aggregates(masked.aggStateDir);
    expect(m!.encoding).toBe('secagg');
    expect(m!.participants).toHaveLength(MEMBERS);
    const a = bytesToF32(p!.body), b = int32Sum(m!.body);
    expect(b.length).toBe(a.length);
    // Training is seeded (member i: seed 1 + i), so both runs send the same changes: the sums differ by the
    // stochastic rounding only, at most one quantum per member per value.
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThanOrEqual(MEMBERS / SCALE + 1e-6);
    expect(masked.events.every((ev) => ev.some((e) => e.event === 'federation-finished'))).toBe(true);

    const entries = await readEntryPayloads(masked.ledgerDir);
    const of = (t: string) => entries.filter((e) => e.type === t);
    expect(of('secagg-keys')).toHaveLength(MEMBERS);
    expect(of('secagg-shares')).toHaveLength(MEMBERS);
    expect(of('secagg-recovery')).toHaveLength(1);
    expect(of('secagg-recovery')[0]).toMatchObject({ dropped: [], threshold: Math.floor(MEMBERS / 2) + 1 });
    expect(of('secagg-reveal').length).toBeGreaterThanOrEqual(Math.floor(MEMBERS / 2) + 1);
    const v = await verifyLedgerDir(masked.ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 120_000);

  it('a member stopped after sharing its keys: the round completes without it (quorum 3 of 4), its pair masks recovered', async () => {
    // Quorum 3: the inputs close when the three others sent, so nothing waits on a clock.
    const r = await run('drop-after-sharing', {
      secagg: true, threshold: 3, policy: { quorum: 3, minParticipants: 3 },
      kill: (i, e) => i === 3 && e.event === 'secagg-shared',
    });
    expect(r.killed).toEqual([3]);
    const [agg] = await aggregates(r.aggStateDir);
    expect(agg!.participants.sort()).toEqual(r.ids.slice(0, 3).sort());
    const entries = await readEntryPayloads(r.ledgerDir);
    const req = entries.find((e) => e.type === 'secagg-recovery');
    expect(req).toMatchObject({ dropped: [r.ids[3]] });
    const reveals = entries.filter((e): e is Extract<EntryPayload, { type: 'secagg-reveal' }> => e.type === 'secagg-reveal');
    expect(reveals.length).toBeGreaterThanOrEqual(3);
    expect(reveals.every((x) => x.sShares.some((s) => s.owner === r.ids[3]) && !x.bShares.some((s) => s.owner === r.ids[3])), 'its s revealed, never its b').toBe(true);
    for (let i = 0; i < 3; i++) expect(r.events[i]!.some((e) => e.event === 'federation-finished'), `member ${i}`).toBe(true);
    const v = await verifyLedgerDir(r.ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 120_000);

  it('a member stopped after advertising its keys, before sharing: the shares phase closes without it at its deadline and the round completes with the others', async () => {
    // Deadline 20 s: each masking phase closes at a quarter of it (5 s) with whoever made it.
    const r = await run('drop-after-advertising', {
      secagg: true, threshold: 3, policy: { quorum: 3, minParticipants: 3, deadlineSeconds: 20 },
      kill: (i, e) => i === 3 && e.event === 'secagg-advertised',
    });
    expect(r.killed).toEqual([3]);
    const [agg] = await aggregates(r.aggStateDir);
    expect(agg!.participants.sort()).toEqual(r.ids.slice(0, 3).sort());
    const entries = await readEntryPayloads(r.ledgerDir);
    expect(entries.filter((e) => e.type === 'secagg-keys').map((e) => (e as { node: string }).node)).toContain(r.ids[3]);
    expect(entries.filter((e) => e.type === 'secagg-shares').map((e) => (e as { node: string }).node)).not.toContain(r.ids[3]);
    // It never shared: it is neither a survivor nor dropped, and no one reveals anything of it.
    const req = entries.find((e): e is Extract<EntryPayload, { type: 'secagg-recovery' }> => e.type === 'secagg-recovery')!;
    expect([...req.survivors, ...req.dropped]).not.toContain(r.ids[3]);
    const reveals = entries.filter((e): e is Extract<EntryPayload, { type: 'secagg-reveal' }> => e.type === 'secagg-reveal');
    expect(reveals.every((x) => ![...x.sShares, ...x.bShares].some((s) => s.owner === r.ids[3]))).toBe(true);
    for (let i = 0; i < 3; i++) expect(r.events[i]!.some((e) => e.event === 'federation-finished'), `member ${i}`).toBe(true);
    const v = await verifyLedgerDir(r.ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 120_000);

  it('a member stopped after sending its masked update: the others reveal its self-mask seed and its input is in the sum', async () => {
    const r = await run('drop-after-sending', {
      secagg: true, threshold: 3, policy: { minParticipants: 3 },
      kill: (i, e) => i === 0 && e.event === 'contributed',
    });
    expect(r.killed).toEqual([0]);
    const [agg] = await aggregates(r.aggStateDir);
    expect(agg!.participants.sort()).toEqual([...r.ids].sort());
    const entries = await readEntryPayloads(r.ledgerDir);
    expect(entries.find((e) => e.type === 'secagg-recovery')).toMatchObject({ dropped: [] });
    const reveals = entries.filter((e): e is Extract<EntryPayload, { type: 'secagg-reveal' }> => e.type === 'secagg-reveal');
    expect(reveals.some((x) => x.node === r.ids[0]), 'the stopped member revealed nothing').toBe(false);
    expect(reveals.length).toBeGreaterThanOrEqual(3);
    const v = await verifyLedgerDir(r.ledgerDir);
    expect(v.ok, JSON.stringify(v)).toBe(true);
  }, 120_000);
});
