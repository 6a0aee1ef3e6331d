import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeStore, type NodeState } from '../src/index.ts';

describe('NodeStore', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });

  it('persists the global model, private weights and contributions across reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-node-'));
    dirs.push(dir);
    const s = await NodeStore.open(dir);
    expect(await s.load()).toBeUndefined();
    const state: NodeState = { version: 2, hash: 'f'.repeat(64), lastRound: 3, contributions: [{ round: 3, baseVersion: 2, loss: 0.5, weight: 10, trainSeconds: 1, at: 1 }], losses: [{ round: 3, losses: [1, 0.5] }] };
    await s.save(state, new Uint8Array([1, 2, 3, 4]), new Uint8Array([9, 9]));
    await s.save({ ...state, version: 3 }, new Uint8Array([5, 6, 7, 8]));
    await s.close();
    const again = await NodeStore.open(dir);
    const loaded = await again.load();
    expect(loaded?.state.version).toBe(3);
    expect(Array.from(loaded!.global)).toEqual([5, 6, 7, 8]);
    expect(Array.from(loaded!.private!)).toEqual([9, 9]); // untouched by a save without private weights
    expect(loaded?.state.contributions).toHaveLength(1);
    await again.close();
  });

  it('refuses a directory another daemon holds, with STATE_LOCKED', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-node-'));
    dirs.push(dir);
    const a = await NodeStore.open(dir);
    await expect(NodeStore.open(dir)).rejects.toMatchObject({ code: 'STATE_LOCKED' });
    await a.close();
  });
});
