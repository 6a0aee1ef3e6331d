import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  advertise, answerRecovery, buildGraph, checkConfig, defaultDegree, maskInput, shareKeys, unmask,
  type IdentitySigner, type SecaggConfig,
} from '../src/index.ts';
import { code, finish, plainSum, randomInputs, runRound, signers, type DropStep } from './helpers.ts';

let ids: IdentitySigner[];
beforeAll(async () => { ids = await signers(12); });

const config = (n: number, t: number, extra: Partial<SecaggConfig> = {}): SecaggConfig => ({
  consortium: 'test', round: 7, members: ids.slice(0, n).map((s) => s.peerId), threshold: t, length: 64, ...extra,
});

function seededRand(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}

describe('exact sums with dropouts at every step (full graph)', () => {
  it('no dropout: the unmasked sum equals the plain sum, including ±valueBound in every coordinate', () => {
    const cfg = config(5, 3);
    const inputs = new Map(cfg.members.map((m, i) => [m, new Int32Array(cfg.length).fill(i % 2 ? 32767 : -32767)]));
    const run = runRound(cfg, ids.slice(0, 5), inputs);
    expect(run.request.dropped).toEqual([]);
    expect(Array.from(finish(run))).toEqual(Array.from(plainSum(inputs, cfg.members, cfg.length)));
  });

  it('property: members drop before advertising, after advertising (before sharing), after sharing (before sending), after sending (before unmasking); the sum of exactly the senders comes back, or the round fails with a typed error when fewer than t answer', () => {
    fc.assert(fc.property(
      fc.integer({ min: 3, max: 8 }), fc.integer({ min: 0, max: 8 }), fc.array(fc.constantFrom<DropStep>(undefined, undefined, undefined, undefined, undefined, 0, 1, 2, 3), { minLength: 8, maxLength: 8 }), fc.integer(),
      (n, tOff, steps, seed) => {
        const lo = Math.floor(n / 2) + 1;
        const t = lo + (tOff % (n - lo + 1));
        const cfg = config(n, t);
        const drop = Object.fromEntries(cfg.members.map((m, i) => [m, steps[i]]));
        const inputs = randomInputs(cfg.members, cfg.length, 32767, seededRand(seed));
        const answering = cfg.members.filter((m) => drop[m] === undefined).length;
        let run;
        try {
          run = runRound(cfg, ids.slice(0, n), inputs, drop);
          const sum = finish(run);
          expect(answering).toBeGreaterThanOrEqual(t);
          // the senders: everyone who reached step 3
          const senders = cfg.members.filter((m) => drop[m] === undefined || drop[m]! >= 3);
          expect(run.request.survivors).toEqual([...senders].sort());
          expect(Array.from(sum)).toEqual(Array.from(plainSum(inputs, senders, cfg.length)));
        } catch (e) {
          const c = (e as { code?: string }).code;
          if (c === undefined) throw e;
          expect(answering).toBeLessThan(t);
          expect(['SECAGG_TOO_FEW_MEMBERS', 'SECAGG_RECOVERY_TOO_FEW', 'SECAGG_NOT_ENOUGH_SHARES']).toContain(c);
        }
      }), { numRuns: 40 });
  });
});

describe('sparse neighbourhood graph (SecAgg+)', () => {
  it('the graph is k-regular, symmetric, and a function of the public seed', () => {
    const members = Array.from({ length: 50 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    const seed = new Uint8Array(32).fill(3);
    const g = buildGraph(members, seed, defaultDegree(50));
    expect(defaultDegree(50)).toBe(18);
    expect(defaultDegree(10)).toBe(9); // small n: full graph
    for (const m of members) {
      expect(g.neighbours(m)).toHaveLength(18);
      for (const j of g.neighbours(m)) expect(g.neighbours(j)).toContain(m);
    }
    const again = buildGraph([...members].reverse(), seed, 18);
    for (const m of members) expect(again.neighbours(m)).toEqual(g.neighbours(m));
    const other = buildGraph(members, new Uint8Array(32).fill(4), 18);
    expect(members.some((m) => other.neighbours(m).join() !== g.neighbours(m).join())).toBe(true);
  });

  it('property: 8–12 members, degree 4, t = 3, random dropouts at every step: the exact sum of the senders or a typed error, never a wrong sum', () => {
    let ok = 0;
    fc.assert(fc.property(
      fc.integer({ min: 8, max: 12 }), fc.array(fc.constantFrom<DropStep>(undefined, undefined, undefined, undefined, undefined, undefined, 0, 1, 2, 3), { minLength: 12, maxLength: 12 }), fc.integer(),
      (n, steps, seed) => {
        const cfg = config(n, 3, { degree: 4 });
        const drop = Object.fromEntries(cfg.members.map((m, i) => [m, steps[i]]));
        const inputs = randomInputs(cfg.members, cfg.length, 32767, seededRand(seed));
        try {
          const sum = finish(runRound(cfg, ids.slice(0, n), inputs, drop));
          const senders = cfg.members.filter((m) => drop[m] === undefined || drop[m]! >= 3);
          expect(Array.from(sum)).toEqual(Array.from(plainSum(inputs, senders, cfg.length)));
          ok++;
        } catch (e) {
          const c = (e as { code?: string }).code;
          if (c === undefined) throw e;
          expect(['SECAGG_TOO_FEW_MEMBERS', 'SECAGG_RECOVERY_TOO_FEW', 'SECAGG_NOT_ENOUGH_SHARES']).toContain(c);
        }
      }), { numRuns: 25 });
    expect(ok).toBeGreaterThan(0);
  });

  it('12 members, degree 4, t = 3 of each neighbourhood of 5: exact sum with one member dropping after sharing and one after sending', () => {
    const cfg = config(12, 3, { degree: 4 });
    const inputs = randomInputs(cfg.members, cfg.length, 1000, seededRand(5));
    const [d2, d3] = [cfg.members[4], cfg.members[9]];
    const run = runRound(cfg, ids, inputs, { [d2]: 2, [d3]: 3 });
    expect(run.round.graph.full).toBe(false);
    expect(run.request.dropped).toEqual([d2]);
    // every member masks with 4 neighbours only, shares go to 4 neighbours only
    for (const b of run.bundles) expect(b.shares).toHaveLength(4);
    const senders = cfg.members.filter((m) => m !== d2);
    expect(Array.from(finish(run))).toEqual(Array.from(plainSum(inputs, senders, cfg.length)));
  });
});

describe('refusals with typed errors', () => {
  it('a replayed request, a second different request, and another round\'s request are refused', () => {
    const cfg = config(5, 3);
    const run = runRound(cfg, ids.slice(0, 5), randomInputs(cfg.members, cfg.length, 100, seededRand(1)), { [cfg.members[0]]: 3 });
    const m = cfg.members[1];
    const s = run.states.get(m)!;
    expect(s.phase).toBe('answered');
    expect(code(() => answerRecovery(s, run.request))).toBe('SECAGG_RECOVERY_REPLAYED');
    // the aggregator now claims member 2 dropped too (to get its mask key while holding its input)
    const second = { ...run.request, survivors: run.request.survivors.filter((x) => x !== cfg.members[2]), dropped: [...run.request.dropped, cfg.members[2]].sort() };
    expect(code(() => answerRecovery(s, second))).toBe('SECAGG_RECOVERY_CONFLICT');
    // last round's request replayed into this round (a fresh state that has not answered yet)
    const fresh = runRound({ ...cfg, round: 8 }, ids.slice(0, 5), randomInputs(cfg.members, cfg.length, 100, seededRand(2)), { [m]: 3 });
    expect(code(() => answerRecovery(fresh.states.get(m)!, run.request))).toBe('SECAGG_RECOVERY_WRONG_ROUND');
  });

  it('a request asking for both masks of one member, naming the answerer dropped, or with fewer than t survivors is refused', () => {
    const cfg = config(5, 3);
    const run = runRound(cfg, ids.slice(0, 5), randomInputs(cfg.members, cfg.length, 100, seededRand(3)), Object.fromEntries(cfg.members.map((m) => [m, 3 as DropStep])));
    const [a, b, c] = cfg.members;
    const st = run.states.get(a)!;
    expect(st.phase).toBe('sent');
    const all = [...cfg.members].sort();
    const req = (survivors: string[], dropped: string[]) => ({ consortium: cfg.consortium, round: cfg.round, survivors, dropped });
    expect(code(() => answerRecovery(st, req(all, [b])))).toBe('SECAGG_RECOVERY_INCONSISTENT');
    expect(code(() => answerRecovery(st, req(all.filter((x) => x !== a), [a])))).toBe('SECAGG_RECOVERY_INCONSISTENT');
    expect(code(() => answerRecovery(st, req(all.filter((x) => x !== a), [])))).toBe('SECAGG_RECOVERY_INCONSISTENT');
    expect(code(() => answerRecovery(st, req([a, b], [c])))).toBe('SECAGG_RECOVERY_TOO_FEW');
    expect(code(() => answerRecovery(st, req([...all, 'stranger'], [])))).toBe('SECAGG_RECOVERY_INCONSISTENT');
    // none of the refusals used up the member's one answer
    expect(answerRecovery(st, req(all, [])).state.phase).toBe('answered');
  });

  it('forged advertisements, tampered or re-addressed shares, values out of range, steps out of order, weak thresholds', () => {
    const cfg = config(4, 3);
    const steps = ids.slice(0, 4).map((id) => advertise(cfg, id));
    const ads = steps.map((s) => s.ad);
    // the relay substitutes member 1's mask key (keeping its old signature)
    const forged = ads.map((a, i) => (i === 1 ? { ...a, sPub: ads[2].sPub } : a));
    expect(code(() => shareKeys(steps[0].state, forged))).toBe('SECAGG_BAD_SIGNATURE');
    expect(code(() => shareKeys(steps[0].state, ads.map((a) => ({ ...a, round: 6 }))))).toBe('SECAGG_BAD_MESSAGE');
    const shared = steps.map((s) => shareKeys(s.state, ads));
    const to0 = shared.slice(1).map((s) => s.bundle.shares.find((x) => x.to === cfg.members[0])!);
    const flipped = to0.map((s, i) => (i === 0 ? { ...s, ciphertext: s.ciphertext.map((b, k) => (k === 3 ? b ^ 1 : b)) } : s));
    const x = new Int32Array(cfg.length);
    expect(code(() => maskInput(shared[0].state, flipped, x))).toBe('SECAGG_SHARE_DECRYPT_FAILED');
    // a share from 2 to 3 handed to 0 relabelled as addressed to 0
    const relabelled = [...to0.slice(1), { ...shared[2].bundle.shares.find((s) => s.to === cfg.members[3])!, to: cfg.members[0] }];
    expect(code(() => maskInput(shared[0].state, relabelled, x))).toBe('SECAGG_BAD_MESSAGE');
    const big = new Int32Array(cfg.length); big[5] = 40000;
    expect(code(() => maskInput(shared[0].state, to0, big))).toBe('SECAGG_VALUE_OUT_OF_RANGE');
    expect(code(() => shareKeys(shared[0].state, ads))).toBe('SECAGG_OUT_OF_ORDER');
    expect(code(() => answerRecovery(shared[0].state, { consortium: cfg.consortium, round: cfg.round, survivors: cfg.members.slice(), dropped: [] }))).toBe('SECAGG_OUT_OF_ORDER');
    expect(code(() => checkConfig(config(4, 2)))).toBe('SECAGG_BAD_CONFIG');
    expect(code(() => checkConfig(config(4, 5)))).toBe('SECAGG_BAD_CONFIG');
    expect(code(() => checkConfig({ ...config(4, 3), valueBound: 2 ** 30 }))).toBe('SECAGG_BAD_CONFIG');
    expect(code(() => checkConfig({ ...config(12, 3), degree: 3 }))).toBe('SECAGG_BAD_CONFIG');
  });

  it('a wrong revealed share is detected at reconstruction (commitment / signed key), not summed into garbage', () => {
    const cfg = config(5, 3);
    const run = runRound(cfg, ids.slice(0, 5), randomInputs(cfg.members, cfg.length, 100, seededRand(9)), { [cfg.members[4]]: 2 });
    const bad = run.responses.map((r, i) => (i === 0 ? { ...r, bShares: r.bShares.map((s) => ({ ...s, y: s.y.map((b, k) => (k === 65 ? b ^ 1 : b)) })) } : r));
    expect(code(() => unmask(run.round, run.request, run.masked, bad))).toBe('SECAGG_RECONSTRUCTION_FAILED');
    const badS = run.responses.map((r, i) => (i === 0 ? { ...r, sShares: r.sShares.map((s) => ({ ...s, y: s.y.map((b, k) => (k === 65 ? b ^ 1 : b)) })) } : r));
    expect(code(() => unmask(run.round, run.request, run.masked, badS))).toBe('SECAGG_RECONSTRUCTION_FAILED');
    expect(code(() => unmask(run.round, run.request, run.masked, run.responses.slice(0, 2)))).toBe('SECAGG_NOT_ENOUGH_SHARES');
  });
});
