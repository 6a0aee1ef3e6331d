import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_COUNT_NOISE, checkPrivacyFloor, firstDifference, loadManifest, manifestHash, parseManifest, privacyPolicyOf, requireSame, secureAggregationOf, secaggSparseDegree } from '../src/index.ts';

const A = '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU';
const B = '12D3KooWDkysGXzm4bHro351yue1T2Spk87nuXGigCNCNHg26Rs7';
const AGG = '12D3KooWCWarB5PocFg6VSA6aZwVA9e7M3zEcBKtxSo5ET4naUQB';
const minimal = { consortium: 'c1', aggregator: AGG, members: [{ peerId: A, name: 'St Anne' }, { peerId: B }], rounds: { total: 3, quorum: 2, minParticipants: 1, deadlineSeconds: 60 }, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } };

describe('consortium manifest', () => {
  it('normalises (defaults, explicit key holder) and hashes the same whatever the file format or key order', async () => {
    const m = parseManifest(minimal);
    expect(m.secureAggregation).toEqual({ scheme: 'bfv', clip: 64, maxParticipants: 1024, keyHolder: A });
    const reordered = parseManifest(JSON.parse(JSON.stringify({ rounds: minimal.rounds, members: minimal.members, privacy: minimal.privacy, aggregator: AGG, consortium: 'c1' })));
    expect(manifestHash(reordered)).toBe(manifestHash(m));
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-manifest-'));
    try {
      await writeFile(join(dir, 'm.yaml'), stringify(minimal));
      await writeFile(join(dir, 'm.json'), JSON.stringify(m));
      expect((await loadManifest(join(dir, 'm.yaml'))).hash).toBe(manifestHash(m));
      expect((await loadManifest(join(dir, 'm.json'))).hash).toBe(manifestHash(m));
      await expect(loadManifest(join(dir, 'none.yaml'))).rejects.toMatchObject({ code: 'CONSORTIUM_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Any change of substance changes the hash.
    expect(manifestHash(parseManifest({ ...minimal, privacy: { ...minimal.privacy, epsilon: 7 } }))).not.toBe(manifestHash(m));
  });

  it('refuses inconsistent manifests with the field named', () => {
    const bad = (raw: unknown, field: RegExp) => expect(() => parseManifest(raw)).toThrowError(field);
    bad({ ...minimal, members: [{ peerId: A }, { peerId: A }] }, /members.*listed twice/);
    bad({ ...minimal, aggregator: A }, /aggregator.*cannot also be a member/);
    bad({ ...minimal, secureAggregation: { keyHolder: AGG } }, /keyHolder.*not a member/);
    bad({ ...minimal, rounds: { ...minimal.rounds, quorum: 3 } }, /rounds\.quorum/);
    bad({ ...minimal, colour: 'red' }, /colour|Unrecognized/);
  });

  it('secagg (issue 16): the threshold pinned (default ⌊m/2⌋ + 1), checked in (m/2, m] with typed errors, derived for the daemons', () => {
    const C = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo';
    const three = { ...minimal, members: [...minimal.members, { peerId: C }] };
    const m = parseManifest({ ...three, secureAggregation: { scheme: 'secagg' } });
    expect(m.secureAggregation).toEqual({ scheme: 'secagg', clip: 64, maxParticipants: 1024, threshold: 2 });
    expect(secureAggregationOf(m)).toEqual({ scheme: 'secagg', threshold: 2, clip: 64, members: [A, B, C] });
    expect(manifestHash(parseManifest({ ...three, secureAggregation: { scheme: 'secagg', threshold: 3 } }))).not.toBe(manifestHash(m));
    const refused = (sa: unknown, field: string, msg: RegExp) => {
      try {
        parseManifest({ ...three, secureAggregation: sa });
      } catch (e) {
        expect(e).toMatchObject({ code: 'CONSORTIUM_INVALID', details: { field } });
        expect((e as Error).message).toMatch(msg);
        return;
      }
      throw new Error('accepted');
    };
    refused({ scheme: 'secagg', threshold: 1 }, 'secureAggregation.threshold', /must be in \(3\/2, 3\]/);
    refused({ scheme: 'secagg', threshold: 4 }, 'secureAggregation.threshold', /must be in \(3\/2, 3\]/);
    refused({ scheme: 'secagg', degree: 3 }, 'secureAggregation.degree', /must be even/);
    refused({ scheme: 'bfv', threshold: 2 }, 'secureAggregation.threshold', /"secagg" only/);
    refused({ scheme: 'secagg', keyHolder: A }, 'secureAggregation.keyHolder', /no key holder/);
    expect(() => parseManifest({ ...minimal, members: [{ peerId: A }], rounds: { ...minimal.rounds, quorum: 1 }, secureAggregation: { scheme: 'secagg' } })).toThrowError(/at least 2 members/);
    // Site-level DP: noise is calibrated for minParticipants inputs, and members reveal sums of t or more.
    const site = { mode: 'site', epsilon: 8, delta: 1e-5, clip: 1 };
    expect(() => parseManifest({ ...three, privacy: site, rounds: { ...three.rounds, quorum: 3, minParticipants: 3 }, secureAggregation: { scheme: 'secagg', threshold: 2 } }))
      .toThrowError(/threshold 2 is below rounds.minParticipants 3/);
    expect(parseManifest({ ...three, privacy: site, rounds: { ...three.rounds, quorum: 3, minParticipants: 2 }, secureAggregation: { scheme: 'secagg', threshold: 2 } }).secureAggregation.threshold).toBe(2);
  });

  it('secagg above 20 members: the sparse graph by default (degree pinned, threshold over the neighbourhood); an even degree ≥ n − 1 keeps the full graph', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys');
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
    const { defaultDegree } = await import('@fedtwin/secagg');
    const ids: string[] = [];
    while (ids.length < 50) ids.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString());
    const of = (n: number, sa: Record<string, unknown> = {}) => parseManifest({ ...minimal, members: ids.slice(0, n).map((peerId) => ({ peerId })), secureAggregation: { scheme: 'secagg', ...sa } }).secureAggregation;
    expect(of(20)).toMatchObject({ threshold: 11 });
    expect(of(20).degree).toBeUndefined();
    expect(of(21)).toMatchObject({ degree: 14, threshold: 8 });
    expect(of(50)).toMatchObject({ degree: 18, threshold: 10 });
    expect(of(50, { degree: 50 })).toMatchObject({ degree: 50, threshold: 26 }); // an even degree ≥ n − 1: the full graph
    for (const n of [2, 3, 10, 20, 21, 33, 50, 64, 100, 128, 1000]) expect(secaggSparseDegree(n)).toBe(defaultDegree(n));
  });

  it('names a typo itself, with the closest valid key, before the field it leaves missing (issue 15 item 6)', () => {
    const typo = (raw: unknown) => { try { parseManifest(raw, 'c.yaml'); } catch (e) { return e as { code: string; message: string; details: { field: string } }; } throw new Error('accepted'); };
    const e = typo({ ...minimal, privacy: { mode: 'record', epsilom: 8, delta: 1e-5, clip: 1 } });
    expect(e.code).toBe('CONSORTIUM_INVALID');
    expect(e.message).toMatch(/^c\.yaml: privacy\.epsilom is not a known field \(did you mean "epsilon"\?\)/);
    expect(e.details.field).toBe('privacy.epsilom');
    const { rounds, ...noRounds } = minimal;
    expect(typo({ ...noRounds, rouns: rounds }).message).toMatch(/^c\.yaml: rouns is not a known field \(did you mean "rounds"\?\)/);
    expect(typo({ ...minimal, rounds: { ...rounds, qorum: 2 } }).message).toMatch(/rounds\.qorum is not a known field \(did you mean "quorum"\?\)/);
  });

  it('derives the policy and the HE setup members apply, and names the first difference', () => {
    const m = parseManifest(minimal);
    expect(privacyPolicyOf(m)).toEqual({ mode: 'record', epsilon: 8, delta: 1e-5, record: { clip: 1, targetEpsilon: 8, countNoise: DEFAULT_COUNT_NOISE } });
    expect(secureAggregationOf(m)).toEqual({ scheme: 'bfv', params: { clip: 64, maxParticipants: 1024 }, keyHolder: A, members: [A, B] });
    expect(firstDifference({ a: 1, b: [1, 2] }, { a: 1, b: [1, 3] })).toEqual({ field: 'b[1]', pinned: 2, announced: 3 });
    expect(() => requireSame('x', { mode: 'record' }, { mode: 'off' }, 'privacy')).toThrowError(/privacy\.mode is "off", the manifest says "record"/);
    try {
      requireSame('x', 1, 2, 'rounds.total');
    } catch (e) {
      expect(e).toMatchObject({ code: 'CONSORTIUM_MISMATCH', details: { field: 'rounds.total', pinned: 1, announced: 2 } });
    }
  });

  it('a member\'s privacy floor refuses weaker manifests', () => {
    const m = parseManifest(minimal);
    expect(() => checkPrivacyFloor(m, { mode: 'record', maxEpsilon: 8, maxDelta: 1e-5 })).not.toThrow();
    expect(() => checkPrivacyFloor(m, { mode: 'site' })).toThrowError(/required site-level/);
    expect(() => checkPrivacyFloor(m, { maxEpsilon: 4 })).toThrowError(/ε = 8, required ≤ 4/);
    expect(() => checkPrivacyFloor(parseManifest({ ...minimal, privacy: { mode: 'off' } }), { maxEpsilon: 100 })).toThrowError(/mode off/);
  });
});
