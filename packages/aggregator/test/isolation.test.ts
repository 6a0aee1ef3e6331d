// Issue 16: isolating the culprit of a withdrawn masked sum over fresh rounds (isolation.ts), as the aggregator
// drives it: each round sits out nextSitOut, a withdrawn round narrows the suspects, one suspect left is excluded.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { afterWithdrawal, isolatedCulprit, nextSitOut, type Isolation } from '../src/isolation.ts';

interface Run { excluded: string[]; withdrawn: number; rounds: number; smallest: number; published: number }

/** The aggregator's loop over `rounds` rounds; `poisons(round, inputs)` says whether the round's sum is unusable. */
function simulate(members: string[], minRoundSize: number, rounds: number, poisons: (round: number, inputs: string[]) => boolean): Run {
  let iso: Isolation | undefined;
  const run: Run = { excluded: [], withdrawn: 0, rounds: 0, smallest: Infinity, published: 0 };
  for (let r = 1; r <= rounds; r++) {
    const able = members.filter((m) => !run.excluded.includes(m));
    const sitOut = nextSitOut(iso, able, minRoundSize);
    if (sitOut && iso) iso = { ...iso, lastSitOut: sitOut };
    const inputs = able.filter((m) => m !== sitOut);
    run.rounds++;
    run.smallest = Math.min(run.smallest, inputs.length);
    if (!poisons(r, inputs)) { run.published++; continue; }
    run.withdrawn++;
    iso = afterWithdrawal(iso, r, inputs, [r]);
    const c = isolatedCulprit(iso);
    if (c) { run.excluded.push(c); iso = undefined; }
  }
  return run;
}

const peers = (n: number) => Array.from({ length: n }, (_, i) => `peer-${String.fromCharCode(97 + i)}`);

describe('isolation of a withdrawn masked sum\'s culprit', () => {
  it('a withdrawn round narrows the suspects to those in every withdrawn round; a repeat changes nothing', () => {
    const a = afterWithdrawal(undefined, 3, ['c', 'a', 'b', 'd'], [10]);
    expect(a).toEqual({ candidates: ['a', 'b', 'c', 'd'], rounds: [3], evidence: [10] });
    const b = afterWithdrawal({ ...a, lastSitOut: 'a' }, 4, ['b', 'c', 'd'], [12, 11]);
    expect(b).toEqual({ candidates: ['b', 'c', 'd'], rounds: [3, 4], evidence: [10, 11, 12], lastSitOut: 'a' });
    expect(afterWithdrawal(b, 4, ['b', 'c', 'd'], [12])).toBe(b); // a restart repeats the withdrawal
    // Disjoint from the suspects (a second culprit): start again from this round's inputs.
    expect(afterWithdrawal({ candidates: ['a'], rounds: [1], evidence: [1] }, 2, ['b', 'c'], [2])).toEqual({ candidates: ['b', 'c'], rounds: [2], evidence: [2] });
    expect(isolatedCulprit(b)).toBeUndefined();
    expect(isolatedCulprit({ candidates: ['c'], rounds: [1, 2], evidence: [] })).toBe('c');
  });

  it('sits suspects out in sorted rotation, only while the round keeps minRoundSize members', () => {
    const iso: Isolation = { candidates: ['b', 'd', 'e'], rounds: [1], evidence: [] };
    const able = ['a', 'b', 'c', 'd', 'e'];
    expect(nextSitOut(undefined, able, 3)).toBeUndefined();
    expect(nextSitOut(iso, able, 3)).toBe('b');
    expect(nextSitOut({ ...iso, lastSitOut: 'b' }, able, 3)).toBe('d');
    expect(nextSitOut({ ...iso, lastSitOut: 'c' }, able, 3)).toBe('d'); // c was cleared: the one after it
    expect(nextSitOut({ ...iso, lastSitOut: 'e' }, able, 3)).toBe('b'); // wraps around
    expect(nextSitOut(iso, able, 5)).toBeUndefined(); // 4 left < 5: nobody sits out
    expect(nextSitOut(iso, ['a', 'b', 'c', 'd'].filter((m) => m !== 'b'), 2)).toBe('d'); // only members that can take part
  });

  it('a lone culprit, adaptive or not, is the only member ever excluded, after at most n withdrawn rounds; rounds never shrink below minRoundSize', () => {
    fc.assert(fc.property(
      fc.integer({ min: 3, max: 9 }), fc.nat(), fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
      (n, pick, behaves) => {
        const members = peers(n);
        const culprit = members[pick % n]!;
        const minRoundSize = Math.floor(n / 2) + 1;
        // Adaptive: it poisons whenever it is in the round and its coin says so (it knows who sits out).
        const run = simulate(members, minRoundSize, 60, (r, inputs) => inputs.includes(culprit) && !behaves[r - 1]);
        expect(run.excluded.every((m) => m === culprit)).toBe(true);
        if (run.excluded.length === 0) expect(run.withdrawn).toBeLessThan(n);
        expect(run.withdrawn).toBeLessThanOrEqual(n);
        expect(run.smallest).toBeGreaterThanOrEqual(minRoundSize);
      },
    ), { numRuns: 300 });
  });

  it('a culprit that poisons every round it is in is excluded within n withdrawn rounds and 2n rounds', () => {
    fc.assert(fc.property(fc.integer({ min: 3, max: 12 }), fc.nat(), (n, pick) => {
      const members = peers(n);
      const culprit = members[pick % n]!;
      const run = simulate(members, Math.floor(n / 2) + 1, 2 * n, (_r, inputs) => inputs.includes(culprit));
      expect(run.excluded).toEqual([culprit]);
      expect(run.withdrawn).toBeLessThanOrEqual(n);
    }), { numRuns: 200 });
  });

  it('the limit, stated in docs/he.md: two colluders that take turns can get an honest member excluded', () => {
    const members = peers(5); // a..e; the colluders are a and b, the member they frame is c
    // Either colluder poisons every round that has c in it: a lone culprit can never clear itself (it cannot
    // poison a round it sits out), but each colluder's sit-out round is poisoned by the other.
    const run = simulate(members, 3, 20, (_r, inputs) => inputs.includes('peer-c') && (inputs.includes('peer-a') || inputs.includes('peer-b')));
    expect(run.excluded[0]).toBe('peer-c');
  });
});
