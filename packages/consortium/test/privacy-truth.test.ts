import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { epsilonFor } from '@fedtwin/dp';
import { DEFAULT_COUNT_NOISE, RECORD_NOISE_FLOOR, calibrationRounds, loadManifest, parseManifest, privacyPolicyOf } from '../src/index.ts';

// Issue 13 items 1, 4 and 9 (docs/privacy.md): the ε a manifest's policy states is a true bound.
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const PEERS = [
  '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU', '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7',
  '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq', '12D3KooWLRPJAA5o6Z6rjvSEPfmPSMxg3BGzyP46rJ6qYt6xXKNF',
  '12D3KooWBnext6Zy3D7VWZD8NxCG8W3vYYEF1Cnw7ZbWhtTr6f6x', '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
  '12D3KooWHRdSuqyPZSFYbJJfR1ozwt2wTjbhrHhG1kGbXwvdvtUU', '12D3KooWSL6ZHrF3NEPLdX3TDvqoCYNt5bhkHTWQZPqx1TWNbQ4R',
  '12D3KooWKcRSqrRBM2cTmu7HTEGnbPbN3xMA2ymEVQfCe5ehxzXk', '12D3KooWAzALbQ3XQ7eVXU6APnvFuRtTRyiSHYBcRjKnpdHAzpdC',
];
const base = (quorum: number) => ({
  consortium: 'ten', aggregator: AGG, members: PEERS.map((peerId) => ({ peerId })),
  rounds: { total: 50, quorum, minParticipants: Math.min(3, quorum), deadlineSeconds: 60 },
});

describe('site-level DP is accounted at q = 1', () => {
  it('10 members, 50 rounds, target ε = 8: the resolved z spends at most 8 at q = 1, whatever the quorum', () => {
    for (const quorum of [2, 5, 10]) {
      const policy = privacyPolicyOf(parseManifest({ ...base(quorum), privacy: { mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 } }));
      const site = policy.site!;
      expect(site.sampleRate, `quorum ${quorum}`).toBe(1);
      const eps = epsilonFor({ sampleRate: 1, noiseMultiplier: site.noiseMultiplier, steps: 50, delta: 1e-5 }).epsilon;
      expect(eps, `quorum ${quorum}`).toBeLessThanOrEqual(8);
      // The spare rounds are headroom, not slack: the planned rounds spend exactly the target.
      const planned = epsilonFor({ sampleRate: 1, noiseMultiplier: site.noiseMultiplier, steps: calibrationRounds(50), delta: 1e-5 }).epsilon;
      expect(planned).toBeLessThanOrEqual(8);
      expect(planned).toBeGreaterThan(8 * (1 - 1e-9));
    }
  });

  it('no site-policy code derives an amplified q from the quorum', async () => {
    const src = await readFile(new URL('../src/derive.ts', import.meta.url), 'utf8');
    const code = src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''); // comments may say what is not done
    expect(code).not.toMatch(/quorum\s*\/\s*\w/);
    expect(code).toMatch(/sampleRate: SITE_SAMPLE_RATE/);
  });
});

describe('site-level DP needs secure aggregation', () => {
  it('a manifest with site or both and plaintext aggregation is refused at validation, with the figures and a hint', async () => {
    for (const mode of ['site', 'both'] as const) {
      const raw = { ...base(5), secureAggregation: { scheme: 'plaintext' }, privacy: { mode, epsilon: 8, delta: 1e-5, clip: 1, site: mode === 'both' ? { clip: 1 } : undefined } };
      let err: unknown;
      try { parseManifest(raw); } catch (e) { err = e; }
      expect(err, mode).toMatchObject({ code: 'CONSORTIUM_INVALID' });
      const e = err as { message: string; hint: string };
      expect(e.message).toMatch(new RegExp(`privacy\\.mode "${mode}" needs secure aggregation`));
      expect(e.message).toMatch(/z\/√m = [\d.]+ per visible update, ε ≈ [\d.]+ over 55 rounds/);
      expect(e.hint).toMatch(/bfv.*record/);
      const dir = await mkdtemp(join(tmpdir(), 'fedtwin-plain-site-'));
      try {
        await writeFile(join(dir, 'm.yaml'), stringify(raw));
        await expect(loadManifest(join(dir, 'm.yaml'))).rejects.toMatchObject({ code: 'CONSORTIUM_INVALID', hint: e.hint });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    // Record-level DP holds for each update on its own: plaintext aggregation is a baseline it allows.
    expect(parseManifest({ ...base(5), secureAggregation: { scheme: 'plaintext' }, privacy: { mode: 'record', clip: 1 } }).privacy.mode).toBe('record');
  });
});

describe('a fixed record-level noise multiplier below the DP-SGD floor', () => {
  it('is refused at validation (not in round 1 on every member), naming the field and the floor', () => {
    for (const mode of ['record', 'both'] as const) {
      const raw = { ...base(5), privacy: { mode, epsilon: 8, delta: 1e-5, clip: 1, noiseMultiplier: 0.3, ...(mode === 'both' ? { site: { clip: 1 } } : {}) } };
      expect(() => parseManifest(raw), mode).toThrowError(/privacy\.noiseMultiplier is 0\.3, below the 0\.5 DP-SGD enforces/);
    }
    expect(parseManifest({ ...base(5), privacy: { mode: 'record', clip: 1, noiseMultiplier: RECORD_NOISE_FLOOR } }).privacy.noiseMultiplier).toBe(0.5);
  });

  it('is the floor DP-SGD itself enforces', async () => {
    const { MIN_NOISE_MULTIPLIER } = await import('@fedtwin/models');
    expect(RECORD_NOISE_FLOOR).toBe(MIN_NOISE_MULTIPLIER);
  });
});

describe('DP is on by default', () => {
  it('a manifest that says nothing about privacy gets record-level DP at ε = 8, δ = 1e-5; no DP needs mode off', () => {
    const m = parseManifest(base(5));
    expect(m.privacy).toEqual({ mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 });
    expect(privacyPolicyOf(m)).toEqual({ mode: 'record', epsilon: 8, delta: 1e-5, record: { clip: 1, targetEpsilon: 8, countNoise: DEFAULT_COUNT_NOISE } });
    expect(parseManifest({ ...base(5), privacy: { epsilon: 3 } }).privacy).toEqual({ mode: 'record', epsilon: 3, delta: 1e-5, clip: 1 });
    expect(parseManifest({ ...base(5), privacy: { mode: 'off' } }).privacy.mode).toBe('off');
  });
});
