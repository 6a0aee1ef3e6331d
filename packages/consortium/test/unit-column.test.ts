import { describe, expect, it } from 'vitest';
import { PrivacyPolicyMessage } from '@fedtwin/protocol';
import { DEFAULT_COUNT_NOISE, manifestHash, parseManifest, privacyPolicyOf } from '../src/index.ts';

// Issue 13 item 6 (docs/privacy.md, "The protected unit"): the unit of record-level DP is a consortium-wide
// choice, pinned in the manifest, so it is in the manifest hash and no aggregator can announce another.
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const A = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const B = '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7';
const base = { consortium: 'units', aggregator: AGG, members: [{ peerId: A }, { peerId: B }], rounds: { total: 5, quorum: 2, minParticipants: 2, deadlineSeconds: 60 } };
const codeOf = (f: () => unknown) => {
  try { f(); } catch (e) { return e as { code: string; message: string }; }
  throw new Error('expected an error');
};

describe('privacy.unitColumn', () => {
  it('is pinned in the manifest (and its hash) and reaches the record-level policy members apply', () => {
    const m = parseManifest({ ...base, privacy: { mode: 'record', epsilon: 4, unitColumn: 'patient_id' } });
    expect(m.privacy.unitColumn).toBe('patient_id');
    const policy = privacyPolicyOf(m);
    expect(policy.record).toEqual({ clip: 1, targetEpsilon: 4, unitColumn: 'patient_id', countNoise: DEFAULT_COUNT_NOISE });
    // The aggregator announces the same policy in its join response: the message carries it.
    expect(PrivacyPolicyMessage.parse(policy)).toEqual(policy);
    const rowLevel = parseManifest({ ...base, privacy: { mode: 'record', epsilon: 4 } });
    expect(privacyPolicyOf(rowLevel).record!.unitColumn).toBeUndefined();
    expect(manifestHash(m)).not.toBe(manifestHash(rowLevel));
    // With both, the record-level half is per unit.
    const both = parseManifest({ ...base, privacy: { mode: 'both', clip: 1, site: { clip: 1, noiseMultiplier: 3 }, unitColumn: 'patient_id' } });
    expect(privacyPolicyOf(both).record!.unitColumn).toBe('patient_id');
  });

  it('is refused where there is no record-level DP to protect a unit with, and when empty', () => {
    for (const mode of ['off', 'site'] as const) {
      const e = codeOf(() => parseManifest({ ...base, privacy: { mode, clip: 1, unitColumn: 'patient_id' } }));
      expect(e.code, mode).toBe('CONSORTIUM_INVALID');
      expect(e.message, mode).toMatch(/privacy\.unitColumn.*record-level DP/);
    }
    expect(codeOf(() => parseManifest({ ...base, privacy: { unitColumn: '' } })).message).toMatch(/privacy\.unitColumn/);
  });
});
