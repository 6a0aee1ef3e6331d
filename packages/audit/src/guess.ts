// The guessing game of a one-run audit: rank canaries by a membership score, guess "in" for the k+ highest,
// "out" for the k− lowest, abstain on the rest, count what was right, and turn the count into ε_lower.
import { FedtwinError } from '@fedtwin/errors';
import { oneRunEpsilonLower } from './one-run.ts';

export interface GuessCount { kPlus: number; kMinus: number }

/** What auditOneRun found; `epsilonLower`, `confidence`, `delta` and `method` are the headline. */
export interface OneRunAudit {
  method: string;
  epsilonLower: number;
  confidence: number;
  delta: number;
  canaries: number;
  /** The candidate (k+, k−) that gave epsilonLower, its guesses r = k+ + k− and correct guesses v. */
  kPlus: number;
  kMinus: number;
  guesses: number;
  correct: number;
  /** The largest ε_lower these canaries and candidates could show: every guess right (the method's ceiling for m). */
  maxAttainable: number;
  /** Every candidate (defaultGuessCounts), each tested at (1 − confidence)/candidates.length (Bonferroni). */
  candidates: Array<GuessCount & { guesses: number; correct: number; epsilonLower: number }>;
}

export const ONE_RUN_METHOD = 'one-run (Steinke, Nasr & Jagielski 2023, Theorem 3)';

/**
 * The (k+, k−) tried by default: r ≈ m/10, m/4 and m/2 guesses split evenly (canaries are in with probability
 * 1/2), and a guess on every canary split where the scores fall into two groups (twoMeansSplit). Few guesses
 * pay off when only the most extreme scores are reliable (DP on); the full split when the scores separate into
 * two clusters (DP off), where an even m/2 split would err by |#in − m/2| ≈ √m/2. The candidates depend on the
 * scores only, never on membership, as Theorem 3 requires of the guesser; testing four costs a factor 4 in the
 * significance level (Bonferroni), i.e. a little ε_lower, and keeps the bound valid whichever wins.
 */
export function defaultGuessCounts(scores: ArrayLike<number>): GuessCount[] {
  const m = scores.length;
  if (m < 1) throw bad('need at least one canary');
  const even = [0.1, 0.25, 0.5].map((f) => Math.max(1, Math.round(f * m))).map((r) => ({ kPlus: Math.ceil(r / 2), kMinus: Math.floor(r / 2) }));
  const kPlus = twoMeansSplit(scores);
  const all = { kPlus, kMinus: m - kPlus };
  const out: GuessCount[] = [];
  for (const c of [...even, all]) if (!out.some((d) => d.kPlus === c.kPlus && d.kMinus === c.kMinus)) out.push(c);
  return out;
}

/**
 * How many of the highest scores to call "in" when guessing on all m: the two-means (Otsu 1979) split of the
 * sorted scores, the k maximising the between-group variance k(m − k)(μ_high − μ_low)², searched where the
 * number of members lies with overwhelming probability (m/4 … 3m/4 of a Binomial(m, 1/2)); ⌈m/2⌉ for m < 4.
 * Otsu rather than the widest gap: on the sim's scores the losses of non-members spread widely, and a gap
 * among them often outgrows the one between members and non-members.
 */
export function twoMeansSplit(scores: ArrayLike<number>): number {
  const m = scores.length;
  const sorted = Array.from(scores).sort((a, b) => b - a);
  if (sorted.some(Number.isNaN)) throw bad('a score is NaN');
  // Centred first, so the prefix sums keep their precision when scores share a large offset.
  const mean = sorted.reduce((a, b) => a + b, 0) / m;
  const prefix = [0];
  for (const x of sorted) prefix.push(prefix[prefix.length - 1]! + (x - mean));
  const lo = Math.max(1, Math.ceil(m / 4));
  const hi = Math.min(m - 1, Math.floor((3 * m) / 4));
  let best = Math.ceil(m / 2);
  let widest = -1;
  for (let k = lo; k <= hi; k++) {
    const high = prefix[k]! / k;
    const low = (prefix[m]! - prefix[k]!) / (m - k);
    const between = k * (m - k) * (high - low) ** 2;
    if (between > widest) { widest = between; best = k; }
  }
  return best;
}

/**
 * Guesses from scores (higher = more likely a member): +1 for the kPlus highest, −1 for the kMinus lowest,
 * 0 (abstain) otherwise. Equal scores are ordered by index, a rule that does not look at membership.
 */
export function guessFromScores(scores: ArrayLike<number>, { kPlus, kMinus }: GuessCount): Int8Array {
  const m = scores.length;
  for (let i = 0; i < m; i++) if (Number.isNaN(scores[i])) throw bad(`score ${i} is NaN`);
  if (!(Number.isInteger(kPlus) && Number.isInteger(kMinus) && kPlus >= 0 && kMinus >= 0 && kPlus + kMinus <= m)) {
    throw bad(`need integers k+, k− ≥ 0 with k+ + k− ≤ ${m}, got ${kPlus}, ${kMinus}`);
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const out = new Int8Array(m);
  for (let j = 0; j < kPlus; j++) out[order[j]!] = 1;
  for (let j = 0; j < kMinus; j++) out[order[m - 1 - j]!] = -1;
  return out;
}

/** Correct guesses: +1 on an included canary, −1 on an excluded one. */
export function countCorrect(guesses: Int8Array, included: ArrayLike<boolean>): { guesses: number; correct: number } {
  if (guesses.length !== included.length) throw bad(`${guesses.length} guesses for ${included.length} canaries`);
  let r = 0;
  let v = 0;
  for (let i = 0; i < guesses.length; i++) {
    if (guesses[i] === 0) continue;
    r++;
    if ((guesses[i] === 1) === Boolean(included[i])) v++;
  }
  return { guesses: r, correct: v };
}

/**
 * A one-run audit from membership scores and the true inclusion coins: each candidate (k+, k−) gives an
 * ε_lower at significance (1 − confidence)/J over J candidates, and the largest is reported (a union bound:
 * the chance that any candidate over-states ε is at most 1 − confidence). The candidates must not depend on
 * `included`; they may depend on the scores (default: defaultGuessCounts(scores)).
 */
export function auditOneRun(opts: { scores: ArrayLike<number>; included: ArrayLike<boolean>; delta: number; confidence?: number; candidates?: GuessCount[] }): OneRunAudit {
  const m = opts.scores.length;
  if (opts.included.length !== m) throw bad(`${m} scores for ${opts.included.length} canaries`);
  const confidence = opts.confidence ?? 0.95;
  if (!(confidence > 0 && confidence < 1)) throw bad(`confidence must be in (0, 1), got ${confidence}`);
  const candidates = opts.candidates ?? defaultGuessCounts(opts.scores);
  if (candidates.length === 0) throw bad('no (k+, k−) candidates');
  const alpha = (1 - confidence) / candidates.length;
  const results = candidates.map((k) => {
    const counts = countCorrect(guessFromScores(opts.scores, k), opts.included);
    return { ...k, ...counts, epsilonLower: oneRunEpsilonLower({ m, r: counts.guesses, v: counts.correct, delta: opts.delta, alpha }) };
  });
  const best = results.reduce((a, b) => (b.epsilonLower > a.epsilonLower ? b : a));
  return {
    method: ONE_RUN_METHOD, epsilonLower: best.epsilonLower, confidence, delta: opts.delta, canaries: m,
    kPlus: best.kPlus, kMinus: best.kMinus, guesses: best.guesses, correct: best.correct,
    maxAttainable: maxAttainableEpsilon(m, { delta: opts.delta, confidence, candidates }),
    candidates: results,
  };
}

/**
 * The ceiling of auditOneRun for m canaries: every guess of every candidate right (by default the candidates'
 * largest r is m, so this is ε_lower for m of m right at significance (1 − confidence)/4).
 */
export function maxAttainableEpsilon(m: number, opts: { delta: number; confidence?: number; candidates?: GuessCount[] }): number {
  const candidates = opts.candidates ?? defaultGuessCounts(new Float64Array(m));
  const alpha = (1 - (opts.confidence ?? 0.95)) / candidates.length;
  return Math.max(...candidates.map(({ kPlus, kMinus }) => oneRunEpsilonLower({ m, r: kPlus + kMinus, v: kPlus + kMinus, delta: opts.delta, alpha })));
}

function bad(message: string): FedtwinError {
  return new FedtwinError('AUDIT_BAD_ARGUMENT', message, { hint: 'see packages/audit/README.md' });
}
