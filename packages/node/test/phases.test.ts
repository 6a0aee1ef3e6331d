import { describe, expect, it } from 'vitest';
import type { NodeContext } from '../src/context.ts';
import { prepareUpdateMasks } from '../src/phases/encode.ts';
import { trainLocal } from '../src/phases/train.ts';

// scheme.ts: local training does not yield to the event loop until an epoch ends, so the HE offline
// phase must be posted, and training started, with no await in between.
describe('round phases', () => {
  it('the HE masks are posted and training starts in the same synchronous step', async () => {
    const order: string[] = [];
    const ctx = {
      global: new Float32Array([1, 2]),
      init: { seed: 1 },
      data: { rows: 1 },
      log: { warn: () => undefined },
      scheme: { prepare: () => { order.push('prepare'); return Promise.resolve(); } },
      model: {
        kind: 'vae',
        vae: {
          setSharedWeights: () => { order.push('set-weights'); },
          trainEpochs: async () => { order.push('train'); return { losses: [0.5], steps: 1, sampleRate: 1 }; },
          getSharedWeights: () => new Float32Array([1.5, 2.5]),
        },
      },
    } as unknown as NodeContext;
    const task = { status: 'open', round: 3, baseVersion: 2, baseHash: 'b', training: { epochs: 1, batchSize: 1 } } as unknown as Parameters<typeof trainLocal>[1];
    prepareUpdateMasks(ctx, { round: 3, baseHash: 'b' });
    const training = trainLocal(ctx, task, {});
    expect(order).toEqual(['prepare', 'set-weights', 'train']);
    const trained = await training;
    expect(Array.from(trained.delta)).toEqual([0.5, 0.5]);
    expect(trained.losses).toEqual([0.5]);
  });
});
