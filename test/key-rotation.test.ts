import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@fedtwin/sim';
import { createConsortium, runCli, type Consortium } from './helpers/consortium.ts';

// Rotating the consortium's HE key mid-federation: the key holder publishes a new key sealed for
// every member; rounds opened afterwards use it, the round in flight finishes under the old one, and
// every member ends with the same model.
describe('HE key rotation (real processes)', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('keys rotate on the key holder takes effect from the next round; the federation finishes consistently', async () => {
    c = await createConsortium({ nodes: 2, rounds: 12, quorum: 2, minParticipants: 2, deadlineSeconds: 60, epochs: 40 });
    const agg = await c.startAggregator();
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i);
    const nodes = [0, 1].map((i) => c!.startNode(i));
    await waitFor('round 2 aggregated', async () => agg.events.find((e) => e.event === 'round-aggregated' && Number(e.version) >= 2), 120_000);
    // The first member is the default key holder.
    const r = await runCli(['keys', 'rotate', '--config', c.nodeConfig(0), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rotated = JSON.parse(r.stdout.trim()) as { keyId: string; epoch: number; previousKeyId: string };
    expect(rotated.epoch).toBe(1);
    expect(rotated.keyId).not.toBe(rotated.previousKeyId);

    const codes = await Promise.all(nodes.map((n) => n.daemon.exited));
    expect(codes, nodes.map((n) => n.daemon.stderrTail()).join('\n')).toEqual([0, 0]);
    for (const n of nodes) expect(n.events.some((e) => e.event === 'he-key-rotated' && e.keyId === rotated.keyId)).toBe(true);
    const results = await Promise.all([0, 1].map(async (i) => JSON.parse(await readFile(join(c!.dir, `node${i}-data`, 'result.json'), 'utf8'))));
    expect(results.map((x) => x.version)).toEqual([12, 12]);
    expect(results[0].hash).toBe(results[1].hash);
    expect(agg.events.some((e) => e.event === 'key-published' && e.epoch === 1)).toBe(true);

    // Rounds before the rotation used the old key, later ones the new; the ledger records the rotation.
    const aggResult = JSON.parse(await readFile(join(c.dir, 'agg-data', 'result.json'), 'utf8')) as { rounds: Array<{ round: number; keyId?: string; status: string }> };
    const keys = aggResult.rounds.filter((x) => x.status === 'aggregated').map((x) => x.keyId);
    expect(keys[0]).toBe(rotated.previousKeyId);
    expect(keys.at(-1)).toBe(rotated.keyId);
    expect(keys.every((k) => k === rotated.previousKeyId || k === rotated.keyId)).toBe(true);
    // A member's replica holds the rotation entry and verifies.
    const verify = await runCli(['ledger', 'verify', '--dir', join(c.dir, 'node1-data', 'ledger'), '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('"key"');
  }, 240_000);
});
