import { describe, expect, it } from 'vitest';
import { parseManifest } from '@fedtwin/consortium';
import { TrainingConfigMessage, UpdateHeader } from '@fedtwin/protocol';
import { dpOn, entrySampleCount, releasedStats, updateWeight } from '../src/phases/encode.ts';
import { localRecord } from '../src/phases/deliver.ts';
import { syntheticClassMix } from '../src/phases/finish.ts';

// Issue 13 item 3, the member's rules for what leaves it besides its accounted update
// (docs/privacy.md, "What leaves a node"). The end-to-end check is test/what-leaves-a-node.test.ts.
const MODES = ['record', 'site', 'both'] as const;
const trained = { losses: [3, 2, 1.25], trainSeconds: 4.5 };

describe('what a member sends besides its update', () => {
  it('under every DP mode: weight 1 (uniform FedAvg), no loss, no training time, no sample count', () => {
    for (const mode of MODES) {
      expect(dpOn(mode)).toBe(true);
      expect(updateWeight(mode, 200)).toBe(1);
      expect(updateWeight(mode, 80)).toBe(1);
      expect(releasedStats(mode, trained)).toEqual({});
      expect(entrySampleCount(mode, 200)).toEqual({});
    }
  });

  it('with DP off: the record count weighs the update and is in the entry; the last loss and the time are sent', () => {
    expect(dpOn('off')).toBe(false);
    expect(updateWeight('off', 200)).toBe(200);
    expect(entrySampleCount('off', 200)).toEqual({ sampleCount: 200 });
    expect(releasedStats('off', trained)).toEqual({ loss: 1.25, trainSeconds: 4.5 });
    expect(releasedStats('off', { losses: [Number.NaN], trainSeconds: 1 })).toEqual({ loss: 0, trainSeconds: 1 }); // a header must hold a finite loss
  });

  it('the member keeps its own statistics; an update re-sent after a restart under DP has none to keep', () => {
    const header = { loss: undefined, trainSeconds: undefined } as unknown as UpdateHeader;
    expect(localRecord(header, trained)).toEqual({ loss: 1.25, trainSeconds: 4.5, losses: trained.losses });
    const r = localRecord(header, undefined);
    expect(r.losses).toEqual([]);
    expect(Number.isNaN(r.loss) && Number.isNaN(r.trainSeconds)).toBe(true);
    expect(localRecord({ loss: 0.7, trainSeconds: 2 } as UpdateHeader, undefined)).toEqual({ loss: 0.7, trainSeconds: 2, losses: [] });
  });
});

describe('the class mix of a synthetic release', () => {
  const classes = ['0', '1'];
  // A site with 90 % of class 1.
  const cond = Int32Array.from({ length: 100 }, (_, i) => (i < 90 ? 1 : 0));

  it('under DP and with nothing declared: uniform, never the site\'s label frequencies', () => {
    expect(syntheticClassMix(classes, cond, { dp: true })).toEqual({ probs: [0.5, 0.5], source: 'uniform' });
    expect(syntheticClassMix(['a', 'b', 'c', 'd'], cond, { dp: true }).probs).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('with DP off and nothing declared: the site\'s own label mix (documented)', () => {
    expect(syntheticClassMix(classes, cond, { dp: false })).toEqual({ probs: [0.1, 0.9], source: 'site-labels' });
  });

  it('a declared mix wins: the operator\'s, then the consortium\'s (both normalised)', () => {
    expect(syntheticClassMix(classes, cond, { dp: true, consortium: { 0: 3, 1: 1 } })).toEqual({ probs: [0.75, 0.25], source: 'consortium' });
    expect(syntheticClassMix(classes, cond, { dp: true, consortium: { 0: 3, 1: 1 }, operator: { 1: 2, 0: 2 } })).toEqual({ probs: [0.5, 0.5], source: 'operator' });
    expect(syntheticClassMix(classes, cond, { dp: false, consortium: { 1: 1 } })).toEqual({ probs: [0, 1], source: 'consortium' });
  });

  it('a calibrating VAE consortium\'s released class counts (already paid for) come after a declared mix and before uniform or the site\'s labels', () => {
    expect(syntheticClassMix(classes, cond, { dp: true, released: [0.3, 0.7] })).toEqual({ probs: [0.3, 0.7], source: 'released-counts' });
    expect(syntheticClassMix(classes, cond, { dp: false, released: [0.3, 0.7] })).toEqual({ probs: [0.3, 0.7], source: 'released-counts' });
    expect(syntheticClassMix(classes, cond, { dp: true, released: [0.3, 0.7], consortium: { 0: 1, 1: 1 } })).toEqual({ probs: [0.5, 0.5], source: 'consortium' });
  });

  it('a declared mix that names no category, a typo, or gives no positive weight is refused with a stable code', () => {
    expect(() => syntheticClassMix(classes, cond, { dp: true, operator: { benign: 1 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => syntheticClassMix(classes, cond, { dp: true, operator: { 0: 0, 1: 0 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => syntheticClassMix(classes, cond, { dp: true, consortium: { 0: 1, 2: 1 } })).toThrow(expect.objectContaining({ code: 'CONSORTIUM_INVALID' }));
  });

  it('the consortium declares its mix in the manifest\'s training config (optional, validated)', () => {
    const members = [{ peerId: '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN' }];
    const base = { consortium: 't', aggregator: '12D3KooWGzh9hzQx5Av1B1HGQwcBw6Da5zU2QnWBpwcLVxa6D2vF', members, rounds: { total: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 } };
    const m = parseManifest({ ...base, training: { epochs: 1, batchSize: 8, learningRate: 0.01, classMix: { 0: 0.5, 1: 0.5 } } });
    expect(m.training.classMix).toEqual({ 0: 0.5, 1: 0.5 });
    expect(parseManifest(base).training.classMix).toBeUndefined();
    const training = { epochs: 1, batchSize: 8, learningRate: 0.01 };
    expect(TrainingConfigMessage.safeParse({ ...training, classMix: { 0: 0, 1: 0 } }).success).toBe(false);
    expect(TrainingConfigMessage.safeParse({ ...training, classMix: { 0: -1, 1: 2 } }).success).toBe(false);
    expect(TrainingConfigMessage.safeParse({ ...training, classMix: { 0: Number.POSITIVE_INFINITY } }).success).toBe(false);
  });
});
