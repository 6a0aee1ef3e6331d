// The noise a member adds to its counts before they are encrypted: its share of the round's noise on the sum.
// Integer Skellam shares (issue 13 item 4): each member adds Sk(μ/m) = Poisson(μ/m) − Poisson(μ/m) per cell, drawn
// by the exact sampler of @fedtwin/dp (no floating point touches the distribution), so m shares sum to Sk(μ)
// exactly: integer counts plus integer noise, summed exactly under BFV, no rounding anywhere. μ is the schedule's
// (calibrateMst with noise 'skellam', the same on every member); m the manifest's minParticipants.
import { FedtwinError } from '@fedtwin/errors';
import { SKELLAM_TAIL_LOG2, skellam, skellamTailBound, type RandomSource, type Rational } from '@fedtwin/dp';
import { MU_GRID } from '@fedtwin/marginals';

/**
 * A share's Poisson mean λ = μ/m as the exact rational (μ·MU_GRID)/(MU_GRID·m): the schedule puts μ on the 1/MU_GRID
 * grid, so the numerator is an integer and λ is exact, whatever m.
 */
export function shareLambda(mu: number, minParticipants: number): Rational {
  const num = mu * MU_GRID;
  if (!Number.isSafeInteger(num) || num < 1 || !Number.isSafeInteger(minParticipants) || minParticipants < 1) {
    throw new FedtwinError('NODE_PRIVACY_MISMATCH', `the Skellam noise μ = ${mu} is not on the schedule's 1/${MU_GRID} grid (or minParticipants ${minParticipants} is not an integer ≥ 1)`, {
      hint: 'μ comes from @fedtwin/marginals calibrateMst with noise "skellam"; a member and the schedule must be of the same version',
    });
  }
  return { num, den: MU_GRID * minParticipants };
}

/**
 * Largest |share| per cell: shares are redrawn beyond it, so each lies within ±B and the wire's range can hold it.
 * P(|Sk(λ)| > B) ≤ 2^SKELLAM_TAIL_LOG2 (2^−1100, Chernoff), so a share is within that total variation of Sk(λ) per
 * cell: docs/privacy.md counts it in δ. 0 with DP off.
 */
export function shareBound(mu: number, minParticipants: number): number {
  return mu > 0 ? skellamTailBound(mu / minParticipants, SKELLAM_TAIL_LOG2) : 0;
}

/**
 * `counts` (integers) plus this member's Sk(μ/m) share per cell, each redrawn beyond ±shareBound. μ = 0 (DP off):
 * the counts as they are. Integers in, integers out.
 */
export function skellamCountShare(counts: Float64Array, mu: number, minParticipants: number, rng: RandomSource): Float64Array {
  const out = Float64Array.from(counts);
  if (mu === 0) return out;
  const lambda = shareLambda(mu, minParticipants);
  const bound = shareBound(mu, minParticipants);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isInteger(out[i]!)) throw new FedtwinError('NODE_PRIVACY_MISMATCH', `count ${i} is ${out[i]}, not an integer`, { hint: 'internal: counts are sums of records' });
    let x: number;
    do x = skellam(rng, lambda);
    while (x > bound || x < -bound);
    out[i]! += x;
  }
  return out;
}
