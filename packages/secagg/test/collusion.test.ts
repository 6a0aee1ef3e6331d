// The threshold is what the docs say: the aggregator (every message of the round) plus t − 1 members (all
// their secrets and held shares) cannot unmask an honest member's input; t members can.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  answerRecovery, combine, commitB, expandMask, fieldToBytes, maskSign, pairwiseSeed, selfMaskSeed, sharedSecret,
  x25519PublicOf, type IdentitySigner, type MemberState, type SecaggConfig,
} from '../src/index.ts';
import { code, randomInputs, runRound, signers, type RoundRun } from './helpers.ts';

let ids: IdentitySigner[];
beforeAll(async () => { ids = await signers(5); });

const N = 5, T = 3, LEN = 4096;

function setup(): { cfg: SecaggConfig; run: RoundRun; target: string } {
  const cfg: SecaggConfig = { consortium: 'collude', round: 3, members: ids.map((s) => s.peerId), threshold: T, length: LEN };
  let s = 12345;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296);
  // Stop before recovery: the coalition decides what to ask.
  const run = runRound(cfg, ids, randomInputs(cfg.members, LEN, 32767, rand), Object.fromEntries(cfg.members.map((m) => [m, 3 as const])));
  return { cfg, run, target: cfg.members[0] };
}

/** What the coalition computes for the target: y_T minus every mask it can derive. */
function attempt(run: RoundRun, target: string, colluders: MemberState[], extra: { b?: { x: number; y: bigint }[]; s?: { x: number; y: bigint }[] } = {}) {
  const { cfg, round } = run;
  const xOf = (m: string) => round.graph.members.indexOf(m) + 1;
  const bPts = [...colluders.map((c) => ({ x: xOf(c.me), y: c.held!.get(target)!.b })), ...(extra.b ?? [])];
  const sPts = [...colluders.map((c) => ({ x: xOf(c.me), y: c.held!.get(target)!.s })), ...(extra.s ?? [])];
  const b = fieldToBytes(combine(bPts) % (1n << 256n), 32);
  const sk = fieldToBytes(combine(sPts) % (1n << 256n), 32);
  const targetAd = round.ads.get(target)!;
  const bOk = Buffer.from(commitB(b, cfg.consortium, cfg.round, target)).equals(round.commits.get(target)!);
  const sOk = Buffer.from(x25519PublicOf(sk)).equals(targetAd.sPub);
  const z = new Uint32Array(run.masked.find((m) => m.member === target)!.values);
  const sub = (mask: Uint32Array) => { for (let i = 0; i < LEN; i++) z[i] -= mask[i]; };
  const add = (mask: Uint32Array) => { for (let i = 0; i < LEN; i++) z[i] += mask[i]; };
  sub(expandMask(selfMaskSeed(b, cfg.consortium, cfg.round, target), LEN));
  for (const j of round.graph.neighbours(target)) {
    const col = colluders.find((c) => c.me === j);
    // a colluder knows its own pair seed with the target; the others need the target's mask key
    const seed = col
      ? pairwiseSeed(sharedSecret(col.s.secret, targetAd.sPub), cfg.consortium, cfg.round, { member: j, sPub: col.s.public }, targetAd)
      : pairwiseSeed(sharedSecret(sk, round.ads.get(j)!.sPub), cfg.consortium, cfg.round, { member: target, sPub: targetAd.sPub }, round.ads.get(j)!);
    const mask = expandMask(seed, LEN);
    if (maskSign(target, j) === 1) sub(mask); else add(mask);
  }
  return { bOk, sOk, guess: new Int32Array(z.buffer) };
}

/** Uniformity of a masked vector: χ² of its top 4 bits over 16 buckets (df = 15; 60 is p ≈ 1e-7). */
function chi2TopNibble(v: Int32Array): number {
  const counts = new Array(16).fill(0);
  for (const x of v) counts[(x >>> 28) & 15]++;
  const e = v.length / 16;
  return counts.reduce((a, c) => a + (c - e) ** 2 / e, 0);
}

const matches = (a: Int32Array, b: Int32Array) => a.reduce((n, x, i) => n + (x === b[i] ? 1 : 0), 0);

describe(`collusion: aggregator + members, n = ${N}, t = ${T}`, () => {
  it('aggregator + t − 1 members holding all their secrets: reconstruction fails and the target stays uniformly masked', () => {
    const { run, target, cfg } = setup();
    const colluders = cfg.members.slice(1, T).map((m) => run.states.get(m)!);
    const x = run.inputs.get(target)!;
    const r = attempt(run, target, colluders);
    expect(r.bOk).toBe(false);
    expect(r.sOk).toBe(false);
    expect(matches(r.guess, x)).toBeLessThan(5); // chance agreement only: 4096 / 2^32
    expect(chi2TopNibble(r.guess)).toBeLessThan(60);
    // x itself is far from uniform in the top bits (|x| ≤ 32767): the test can tell the difference
    expect(chi2TopNibble(x)).toBeGreaterThan(1000);
  });

  it('aggregator + t − 1 members who also claim the target dropped: honest members reveal its mask key, but never its b too', () => {
    const { run, target, cfg } = setup();
    const colluders = cfg.members.slice(1, T).map((m) => run.states.get(m)!);
    const honest = cfg.members.slice(T);
    const lie = { consortium: cfg.consortium, round: cfg.round, survivors: cfg.members.filter((m) => m !== target).sort(), dropped: [target] };
    const xOf = (m: string) => run.round.graph.members.indexOf(m) + 1;
    const sFromHonest = honest.map((m) => {
      const { response } = answerRecovery(run.states.get(m)!, lie);
      const y = response.sShares.find((s) => s.owner === target)!.y;
      return { x: xOf(m), y: BigInt('0x' + Buffer.from(y).toString('hex')) };
    });
    const r = attempt(run, target, colluders, { s: sFromHonest });
    expect(r.sOk).toBe(true); // the pair masks are gone …
    expect(r.bOk).toBe(false); // … but the self-mask is not:
    expect(matches(r.guess, run.inputs.get(target)!)).toBeLessThan(5);
    expect(chi2TopNibble(r.guess)).toBeLessThan(60);
    // asking the honest members again, now for the target's b-share, is refused
    const ask = { ...lie, survivors: cfg.members.slice().sort(), dropped: [] };
    for (const m of honest) {
      const answered = answerRecovery(run.states.get(m)!, lie).state;
      expect(code(() => answerRecovery(answered, ask))).toBe('SECAGG_RECOVERY_CONFLICT');
    }
  });

  it('aggregator + t members: the target\'s input comes out exactly (so t is the threshold)', () => {
    const { run, target, cfg } = setup();
    const colluders = cfg.members.slice(1, T + 1).map((m) => run.states.get(m)!);
    const r = attempt(run, target, colluders);
    expect(r.bOk).toBe(true);
    expect(r.sOk).toBe(true);
    expect(Array.from(r.guess)).toEqual(Array.from(run.inputs.get(target)!));
  });
});
